package picker

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/bits-and-blooms/bitset"
)

// checkInvariants cross-checks every redundant structure of the picker
// against the others, so a test that drives it through many operations
// catches bookkeeping drift at the step that caused it.
func checkInvariants(p *Picker) error {
	wantMissing := 0
	for i := range p.n {
		if !p.have.Test(uint(i)) && p.wanted(i) {
			wantMissing++
		}
		if p.skip != nil && p.skip.Test(uint(i)) != !p.wanted(i) {
			return fmt.Errorf("piece %d: skip set and priority %d disagree", i, p.priority(i))
		}
	}
	if wantMissing != p.missing {
		return fmt.Errorf("missing=%d, have set and priorities say %d", p.missing, wantMissing)
	}
	counts := make([]int32, p.n)
	seeds := 0
	for _, ps := range p.peers {
		if !ps.counted {
			continue
		}
		if ps.haveAll {
			seeds++
			continue
		}
		for i, ok := ps.has.NextSet(0); ok; i, ok = ps.has.NextSet(i + 1) {
			counts[i]++
		}
	}
	if seeds != p.seeds {
		return fmt.Errorf("seeds=%d, peers say %d", p.seeds, seeds)
	}
	inBuckets, inHigh := 0, 0
	for h, bs := range [][][]int32{p.buckets, p.hbuckets} {
		for c, b := range bs {
			inBuckets += len(b)
			if h == 1 {
				inHigh += len(b)
			}
			for k, piece := range b {
				if int(p.avail[piece]) != c || int(p.pos[piece]) != k {
					return fmt.Errorf("piece %d in bucket %d slot %d but avail=%d pos=%d", piece, c, k, p.avail[piece], p.pos[piece])
				}
				if p.high(int(piece)) != (h == 1) || !p.wanted(int(piece)) {
					return fmt.Errorf("piece %d of priority %d in the wrong buckets", piece, p.priority(int(piece)))
				}
			}
		}
	}
	if inHigh != p.nHigh {
		return fmt.Errorf("high buckets hold %d, counter %d", inHigh, p.nHigh)
	}
	if inBuckets != p.nUntouched || int(p.untouched.Count()) != inBuckets {
		return fmt.Errorf("untouched: buckets %d, counter %d, bitset %d", inBuckets, p.nUntouched, p.untouched.Count())
	}
	for i := range p.n {
		if counts[i] != p.avail[i] {
			return fmt.Errorf("piece %d avail=%d, peers say %d", i, p.avail[i], counts[i])
		}
		states := 0
		if p.have.Test(uint(i)) {
			states++
		}
		if p.pos[i] >= 0 {
			states++
			if !p.untouched.Test(uint(i)) {
				return fmt.Errorf("piece %d in a bucket but not in untouched set", i)
			}
		}
		if p.parts[i] != nil {
			states++
		}
		want := 1
		if states == 0 && !p.wanted(i) {
			want = 0 // unwanted, missing and not started: nowhere
		}
		if states != want {
			return fmt.Errorf("piece %d is in %d of have/unstarted/started", i, states)
		}
	}
	if err := checkPartials(p); err != nil {
		return err
	}
	return checkOutstanding(p)
}

func checkPartials(p *Picker) error {
	for k, piece := range p.active {
		part := p.parts[piece]
		if part == nil || part.activeIdx != k || part.piece != int(piece) {
			return fmt.Errorf("active[%d]=%d has no matching partial", k, piece)
		}
		free, recv := 0, 0
		for bi, b := range part.blocks {
			switch b.state {
			case blockFree:
				free++
				if bi < part.nextFree {
					return fmt.Errorf("piece %d block %d free below nextFree %d", piece, bi, part.nextFree)
				}
				if b.n != 0 {
					return fmt.Errorf("piece %d block %d free with requesters", piece, bi)
				}
			case blockReceived:
				recv++
				if b.n != 0 {
					return fmt.Errorf("piece %d block %d received with requesters", piece, bi)
				}
			case blockRequested:
				if b.n == 0 || int(b.n) > maxDup {
					return fmt.Errorf("piece %d block %d has %d requesters", piece, bi, b.n)
				}
			}
			seen := b.reqs[:b.n]
			for j, peer := range seen {
				if slices.Contains(seen[j+1:], peer) {
					return fmt.Errorf("piece %d block %d requested twice from %d", piece, bi, peer)
				}
				ps := p.peers[peer]
				if ps == nil {
					return fmt.Errorf("piece %d block %d requested from unknown peer %d", piece, bi, peer)
				}
				if _, ok := ps.out[blockRef{piece, int32(bi)}]; !ok {
					return fmt.Errorf("piece %d block %d: peer %d does not list it", piece, bi, peer)
				}
			}
		}
		if free != part.free || recv != part.received || len(part.blocks) != p.numBlocks(int(piece)) {
			return fmt.Errorf("piece %d counts free=%d/%d received=%d/%d", piece, part.free, free, part.received, recv)
		}
		if (free > 0) != (part.openIdx >= 0) {
			return fmt.Errorf("piece %d free=%d openIdx=%d", piece, free, part.openIdx)
		}
		if part.openIdx >= 0 && (part.openIdx >= len(p.open) || p.open[part.openIdx] != piece) {
			return fmt.Errorf("piece %d open index %d wrong", piece, part.openIdx)
		}
		if recv == 0 && free == len(part.blocks) {
			return fmt.Errorf("piece %d started but untouched", piece)
		}
	}
	for _, piece := range p.open {
		if p.parts[piece] == nil {
			return fmt.Errorf("open piece %d has no partial", piece)
		}
	}
	for i, part := range p.parts {
		if part != nil && (part.activeIdx >= len(p.active) || int(p.active[part.activeIdx]) != i) {
			return fmt.Errorf("partial %d not in active list", i)
		}
	}
	return nil
}

func checkOutstanding(p *Picker) error {
	for id, ps := range p.peers {
		for ref := range ps.out {
			part := p.parts[ref.piece]
			if part == nil {
				return fmt.Errorf("peer %d lists %v of an unstarted piece", id, ref)
			}
			if b := &part.blocks[ref.block]; b.state != blockRequested || !b.requestedBy(id) {
				return fmt.Errorf("peer %d lists %v, block state %d", id, ref, b.state)
			}
		}
		queued := map[blockRef]uint64{}
		for _, q := range ps.queue[ps.qhead:] {
			queued[q.ref] = q.serial
		}
		for ref, serial := range ps.out {
			if queued[ref] != serial {
				return fmt.Errorf("peer %d request %v missing from the timeout queue", id, ref)
			}
		}
	}
	return nil
}

func mustCheck(t testing.TB, p *Picker) {
	t.Helper()
	if err := checkInvariants(p); err != nil {
		t.Fatal(err)
	}
}

// uniform returns a picker with n pieces of pieceSize bytes each.
func uniform(t testing.TB, n int, pieceSize int64, seed int64) *Picker {
	t.Helper()
	p, err := New(n, func(int) int64 { return pieceSize }, nil, rand.New(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bits(n int, set ...int) *bitset.BitSet {
	b := bitset.New(uint(n))
	for _, i := range set {
		b.Set(uint(i))
	}
	return b
}
