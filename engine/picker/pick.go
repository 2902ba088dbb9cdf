package picker

import (
	"time"

	"github.com/bits-and-blooms/bitset"
)

// view answers "does the peer have piece i" for one pick.
type view struct {
	bs  *bitset.BitSet
	all bool
}

func (v view) has(i int) bool { return v.all || (v.bs != nil && v.bs.Test(uint(i))) }

func (p *Picker) viewOf(ps *peerState, peerHas *bitset.BitSet) view {
	if peerHas != nil {
		return view{bs: peerHas}
	}
	return view{bs: ps.has, all: ps.haveAll}
}

// Pick chooses up to max new blocks to request from peer and records them
// as requested at now. peerHas is what the peer has; nil means what the
// picker was told through PeerHas/PeerBitfield/PeerHaveAll. The order is:
// blocks of pieces already started (so they finish and can be verified),
// then unstarted pieces rarest first with a random choice among equally
// rare ones (or lowest index first in sequential mode), then, only in
// endgame, blocks already requested from other peers. The session must not
// call Pick for a peer that is choking us; see PickAllowedFast.
// Session goroutine only.
func (p *Picker) Pick(peer PeerID, peerHas *bitset.BitSet, max int, now time.Time) []Request {
	if max <= 0 || p.missing == 0 {
		return nil
	}
	ps := p.peer(peer)
	v := p.viewOf(ps, peerHas)
	out := make([]Request, 0, min(max, 64))
	out = p.pickPartials(ps, peer, v, max, now, out)
	if len(out) < max && !p.activeFull() {
		if p.sequential {
			p.collectSequential(v, max-len(out))
		} else {
			p.collectRarest(v, max-len(out))
		}
		for _, piece := range p.scratch {
			if p.activeFull() {
				break
			}
			out = p.takeFree(ps, peer, p.startPiece(int(piece)), max, now, out)
		}
	}
	if len(out) < max && p.endgame() {
		out = p.pickDuplicates(ps, peer, v, max, now, out)
	}
	return out
}

func (p *Picker) activeFull() bool { return p.maxActive > 0 && len(p.active) >= p.maxActive }

// PickAllowedFast is Pick restricted to the allowed-fast pieces the peer
// gave us (BEP 6), which we may request while it chokes us. No endgame
// duplicates are made. Session goroutine only.
func (p *Picker) PickAllowedFast(peer PeerID, peerHas *bitset.BitSet, allowed []int, max int, now time.Time) []Request {
	if max <= 0 || p.missing == 0 || len(allowed) == 0 {
		return nil
	}
	ps := p.peer(peer)
	v := p.viewOf(ps, peerHas)
	var out []Request
	for _, piece := range allowed {
		if len(out) >= max {
			break
		}
		if piece < 0 || piece >= p.n || p.have.Test(uint(piece)) || !v.has(piece) {
			continue
		}
		part := p.parts[piece]
		if part == nil && !p.wanted(piece) {
			continue
		}
		if part == nil {
			part = p.startPiece(piece)
		}
		out = p.takeFree(ps, peer, part, max, now, out)
	}
	return out
}

// pickPartials takes free blocks from started pieces the peer has.
func (p *Picker) pickPartials(ps *peerState, peer PeerID, v view, max int, now time.Time, out []Request) []Request {
	for i := 0; i < len(p.open) && len(out) < max; {
		piece := int(p.open[i])
		if !v.has(piece) {
			i++
			continue
		}
		out = p.takeFree(ps, peer, p.parts[piece], max, now, out)
		// takeFree swap-removes a piece it exhausts from p.open, which
		// puts an unvisited piece at index i.
		if i < len(p.open) && int(p.open[i]) == piece {
			i++
		}
	}
	return out
}

// takeFree requests free blocks of part, lowest first, until out has max.
func (p *Picker) takeFree(ps *peerState, peer PeerID, part *partial, max int, now time.Time, out []Request) []Request {
	for blk := part.nextFree; blk < len(part.blocks) && part.free > 0 && len(out) < max; blk++ {
		if part.blocks[blk].state != blockFree {
			if blk == part.nextFree {
				part.nextFree++
			}
			continue
		}
		if blk == part.nextFree {
			part.nextFree++
		}
		p.request(ps, peer, part, blk, now)
		out = append(out, p.req(part.piece, blk))
	}
	return out
}

// collectRarest fills p.scratch with unstarted pieces the peer has, from
// the rarest bucket up, until they hold at least want blocks. Within a
// bucket it starts at a random position, which makes the choice among
// equally rare pieces uniform. It only reads the buckets: starting the
// pieces reorders them.
func (p *Picker) collectRarest(v view, want int) {
	p.scratch = p.scratch[:0]
	if p.nHigh > 0 {
		want = p.collectBuckets(p.hbuckets, v, want)
	}
	p.collectBuckets(p.buckets, v, want)
}

// collectBuckets appends to p.scratch from buckets, rarest first, and
// returns how many blocks are still wanted.
func (p *Picker) collectBuckets(buckets [][]int32, v view, want int) int {
	for c := 0; c < len(buckets) && want > 0; c++ {
		b := buckets[c]
		if len(b) == 0 {
			continue
		}
		start := p.rng.Intn(len(b))
		for k := 0; k < len(b) && want > 0; k++ {
			j := start + k
			if j >= len(b) {
				j -= len(b)
			}
			if piece := int(b[j]); v.has(piece) {
				p.scratch = append(p.scratch, int32(piece))
				want -= p.numBlocks(piece)
			}
		}
	}
	return want
}

// collectSequential is collectRarest in piece-index order: high-priority
// pieces in order first, then the others.
func (p *Picker) collectSequential(v view, want int) {
	p.scratch = p.scratch[:0]
	for pass := 0; pass < 2 && want > 0; pass++ {
		if pass == 0 && p.nHigh == 0 {
			continue
		}
		for i, ok := p.untouched.NextSet(0); ok && want > 0; i, ok = p.untouched.NextSet(i + 1) {
			piece := int(i)
			if p.high(piece) != (pass == 0) || !v.has(piece) {
				continue
			}
			p.scratch = append(p.scratch, int32(piece))
			want -= p.numBlocks(piece)
		}
	}
}
