package picker

import (
	"fmt"

	"github.com/bits-and-blooms/bitset"
)

// Piece priorities, as SetPiecePriority takes them. The session derives a
// piece's priority from the files it touches: the highest of theirs.
const (
	PrioritySkip   = 0 // not wanted: never picked, not counted as missing
	PriorityNormal = 1
	PriorityHigh   = 2 // picked before any normal piece
)

// SetPiecePriority sets piece's priority (PrioritySkip, PriorityNormal or
// PriorityHigh). A piece that is not wanted is neither picked nor counted in
// Missing, so a torrent whose wanted pieces are all verified is complete. A
// started piece that becomes unwanted keeps its block table: the session
// drops it with PieceFailed (after cancelling its requests), which then
// leaves it out of the buckets. Session goroutine only.
func (p *Picker) SetPiecePriority(piece, prio int) error {
	if piece < 0 || piece >= p.n {
		return fmt.Errorf("%w: %d", ErrBadPiece, piece)
	}
	if prio < PrioritySkip || prio > PriorityHigh {
		return fmt.Errorf("picker: priority %d", prio)
	}
	old := p.priority(piece)
	if old == prio {
		return nil
	}
	if p.prio == nil {
		p.prio = make([]uint8, p.n)
		for i := range p.prio {
			p.prio[i] = PriorityNormal
		}
		p.skip = bitset.New(uint(p.n))
	}
	if p.have.Test(uint(piece)) {
		p.setPrio(piece, prio)
		return nil
	}
	untouched := p.pos[piece] >= 0
	if untouched {
		p.bucketRemove(piece) // from the buckets of its old class
	}
	p.setPrio(piece, prio)
	switch {
	case old == PrioritySkip:
		p.missing++
		if p.parts[piece] == nil {
			p.bucketAdd(piece)
		}
	case prio == PrioritySkip:
		p.missing--
	case untouched:
		p.bucketAdd(piece)
	}
	return nil
}

func (p *Picker) setPrio(piece, prio int) {
	p.prio[piece] = uint8(prio)
	if prio == PrioritySkip {
		p.skip.Set(uint(piece))
	} else {
		p.skip.Clear(uint(piece))
	}
}

// priority is piece's priority; normal unless set.
func (p *Picker) priority(piece int) int {
	if p.prio == nil {
		return PriorityNormal
	}
	return int(p.prio[piece])
}

// Wanted reports whether piece is to be downloaded (not PrioritySkip).
// Session goroutine only.
func (p *Picker) Wanted(piece int) bool {
	return piece >= 0 && piece < p.n && p.priority(piece) != PrioritySkip
}

func (p *Picker) wanted(piece int) bool { return p.priority(piece) != PrioritySkip }

// high reports whether an unstarted piece belongs in the high buckets.
func (p *Picker) high(piece int) bool { return p.priority(piece) == PriorityHigh }

// word is ws[i], or 0 past its end (or for a nil set).
func word(ws []uint64, i int) uint64 {
	if i < len(ws) {
		return ws[i]
	}
	return 0
}

// HaveAll reports whether every piece is verified, unwanted ones included.
// Session goroutine only.
func (p *Picker) HaveAll() bool { return p.missing == 0 && int(p.have.Count()) == p.n }
