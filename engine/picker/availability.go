package picker

import (
	"fmt"
	"slices"

	"github.com/bits-and-blooms/bitset"
)

// peerState is what the picker knows about one connection.
type peerState struct {
	has     *bitset.BitSet      // pieces announced; unused when haveAll
	haveAll bool                // counted in Picker.seeds, not in avail
	counted bool                // has/haveAll contribute to availability
	out     map[blockRef]uint64 // outstanding requests -> request serial
	queue   []timed             // requests in sending order, some stale, for Timeouts
	qhead   int
	serial  uint64
}

// blockRef names a block by piece and block number.
type blockRef struct{ piece, block int32 }

// timed is a request and when it was sent (UnixNano of the injected
// clock). The serial tells it from an earlier request of the same block,
// which the clock alone cannot when it did not advance in between.
type timed struct {
	ref    blockRef
	serial uint64
	at     int64
}

func (p *Picker) peer(id PeerID) *peerState {
	ps := p.peers[id]
	if ps == nil {
		ps = &peerState{out: make(map[blockRef]uint64)}
		p.peers[id] = ps
	}
	return ps
}

// bucketAdd puts an unstarted missing piece into the bucket for its
// availability. O(1) amortised.
func (p *Picker) bucketAdd(piece int) {
	bs := &p.buckets
	if p.high(piece) {
		bs = &p.hbuckets
		p.nHigh++
	}
	c := int(p.avail[piece])
	for c >= len(*bs) {
		*bs = append(*bs, nil)
	}
	p.pos[piece] = int32(len((*bs)[c]))
	(*bs)[c] = append((*bs)[c], int32(piece))
	p.untouched.Set(uint(piece))
	p.nUntouched++
}

// bucketRemove takes a piece out of its bucket by swapping the bucket's
// last piece into its place. O(1).
func (p *Picker) bucketRemove(piece int) {
	bs := p.buckets
	if p.high(piece) {
		bs = p.hbuckets
		p.nHigh--
	}
	b := bs[p.avail[piece]]
	i := p.pos[piece]
	last := b[len(b)-1]
	b[i] = last
	p.pos[last] = i
	bs[p.avail[piece]] = b[:len(b)-1]
	p.pos[piece] = -1
	p.untouched.Clear(uint(piece))
	p.nUntouched--
}

func (p *Picker) addAvail(piece int, delta int32) {
	if p.avail == nil {
		return // complete: counted from the peers' sets if ever needed (grow)
	}
	if p.pos[piece] < 0 {
		p.avail[piece] += delta
		return
	}
	p.bucketRemove(piece)
	p.avail[piece] += delta
	p.bucketAdd(piece)
}

// uncount removes a peer's contribution to availability.
func (p *Picker) uncount(ps *peerState) {
	if !ps.counted {
		return
	}
	if ps.haveAll {
		p.seeds--
	} else if ps.has != nil {
		for i, ok := ps.has.NextSet(0); ok; i, ok = ps.has.NextSet(i + 1) {
			p.addAvail(int(i), -1)
		}
		ps.has.ClearAll()
	}
	ps.haveAll, ps.counted = false, false
}

// PeerHas records a HAVE message. O(1). Session goroutine only.
func (p *Picker) PeerHas(peer PeerID, piece int) error {
	if piece < 0 || piece >= p.n {
		return fmt.Errorf("%w: have %d of %d", ErrBadPiece, piece, p.n)
	}
	ps := p.peer(peer)
	if ps.haveAll {
		return nil
	}
	if ps.has == nil {
		ps.has = bitset.New(uint(p.n))
	}
	ps.counted = true
	if !ps.has.Test(uint(piece)) {
		ps.has.Set(uint(piece))
		p.addAvail(piece, 1)
	}
	return nil
}

// PeerBitfield records a BITFIELD message, replacing anything known about
// the peer. Bits past the last piece are an error (BEP 3 says spare bits
// must be zero); the picker keeps its own copy of bf. A full bitfield is
// treated like HAVE ALL. O(NumPieces). Session goroutine only.
func (p *Picker) PeerBitfield(peer PeerID, bf *bitset.BitSet) error {
	if bf != nil {
		if i, ok := bf.NextSet(uint(p.n)); ok {
			return fmt.Errorf("%w: bit %d set, %d pieces", ErrBadBitfield, i, p.n)
		}
	}
	if bf != nil && p.n > 0 && bf.Count() == uint(p.n) {
		p.PeerHaveAll(peer)
		return nil
	}
	ps := p.peer(peer)
	p.uncount(ps)
	if ps.has == nil {
		ps.has = bitset.New(uint(p.n))
	}
	ps.counted = true
	if bf == nil {
		return nil
	}
	for i, ok := bf.NextSet(0); ok; i, ok = bf.NextSet(i + 1) {
		ps.has.Set(i)
		p.addAvail(int(i), 1)
	}
	return nil
}

// PeerHaveAll records HAVE ALL (BEP 6) or a complete bitfield. O(1) unless
// the peer had announced pieces before. Session goroutine only.
func (p *Picker) PeerHaveAll(peer PeerID) {
	ps := p.peer(peer)
	p.uncount(ps)
	ps.haveAll, ps.counted = true, true
	p.seeds++
}

// PeerHaveNone records HAVE NONE (BEP 6), forgetting earlier announcements.
// Session goroutine only.
func (p *Picker) PeerHaveNone(peer PeerID) { _ = p.PeerBitfield(peer, nil) }

// PeerGone forgets a disconnected peer: its pieces stop counting and its
// outstanding requests become free. Contributions to unverified pieces are
// kept so a later PieceFailed still names it. Session goroutine only.
func (p *Picker) PeerGone(peer PeerID) {
	ps := p.peers[peer]
	if ps == nil {
		return
	}
	p.uncount(ps)
	p.freePeer(peer, ps, nil)
	delete(p.peers, peer)
}

// PeerPieces returns the picker's own copy of what a peer announced (nil
// for an unknown peer, and for one that has everything, see PeerIsSeed).
// The caller must not modify it. Session goroutine only.
func (p *Picker) PeerPieces(peer PeerID) *bitset.BitSet {
	if ps := p.peers[peer]; ps != nil && !ps.haveAll {
		return ps.has
	}
	return nil
}

// PeerIsSeed reports whether the peer announced every piece.
// Session goroutine only.
func (p *Picker) PeerIsSeed(peer PeerID) bool {
	ps := p.peers[peer]
	return ps != nil && ps.haveAll
}

// Outstanding is the number of requests the peer has not yet answered.
// Session goroutine only.
func (p *Picker) Outstanding(peer PeerID) int {
	if ps := p.peers[peer]; ps != nil {
		return len(ps.out)
	}
	return 0
}

// sortedRefs returns a peer's outstanding blocks in a fixed order, so that
// freeing them does not depend on map iteration order and runs stay
// reproducible from the injected rand seed.
func sortedRefs(ps *peerState) []blockRef {
	refs := make([]blockRef, 0, len(ps.out))
	for r := range ps.out {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b blockRef) int {
		if a.piece != b.piece {
			return int(a.piece - b.piece)
		}
		return int(a.block - b.block)
	})
	return refs
}
