package picker

import (
	"fmt"
	"slices"
	"time"
)

// Block states.
const (
	blockFree uint8 = iota
	blockRequested
	blockReceived
)

// block is one BlockSize slice of a started piece. reqs[:n] are the peers
// it is currently requested from (more than one only in endgame).
type block struct {
	state uint8
	n     uint8
	reqs  [maxDup]PeerID
}

func (b *block) requestedBy(peer PeerID) bool {
	return slices.Contains(b.reqs[:b.n], peer)
}

// partial is a started, unverified piece.
type partial struct {
	piece     int
	blocks    []block
	free      int // blocks in blockFree
	received  int // blocks in blockReceived
	nextFree  int // no free block below this index
	openIdx   int // index in Picker.open, -1 when absent
	activeIdx int // index in Picker.active
	contrib   []PeerID
}

func (p *Picker) numBlocks(piece int) int {
	return int((p.size(piece) + BlockSize - 1) / BlockSize)
}

func (p *Picker) blockLen(piece, blk int) int {
	return int(min(p.size(piece)-int64(blk)*BlockSize, BlockSize))
}

func (p *Picker) req(piece, blk int) Request {
	return Request{Piece: piece, Begin: blk * BlockSize, Length: p.blockLen(piece, blk)}
}

// blockOf checks that (piece, begin, length) is exactly one of our blocks.
func (p *Picker) blockOf(piece, begin, length int) (int, error) {
	if piece < 0 || piece >= p.n {
		return 0, fmt.Errorf("%w: %d", ErrBadPiece, piece)
	}
	if begin < 0 || begin%BlockSize != 0 || int64(begin) >= p.size(piece) {
		return 0, fmt.Errorf("%w: piece %d begin %d", ErrBadBlock, piece, begin)
	}
	blk := begin / BlockSize
	if length != p.blockLen(piece, blk) {
		return 0, fmt.Errorf("%w: piece %d begin %d length %d", ErrBadBlock, piece, begin, length)
	}
	return blk, nil
}

// startPiece turns an unstarted piece into a partial with all blocks free.
func (p *Picker) startPiece(piece int) *partial {
	p.bucketRemove(piece)
	var part *partial
	if k := len(p.spare); k > 0 {
		part, p.spare = p.spare[k-1], p.spare[:k-1]
	} else {
		part = &partial{}
	}
	nb := p.numBlocks(piece)
	if cap(part.blocks) >= nb {
		part.blocks = part.blocks[:nb]
		clear(part.blocks)
	} else {
		part.blocks = make([]block, nb)
	}
	part.piece, part.free, part.received, part.nextFree = piece, nb, 0, 0
	part.contrib = part.contrib[:0]
	part.activeIdx = len(p.active)
	p.active = append(p.active, int32(piece))
	part.openIdx = -1
	p.addOpen(part)
	p.parts[piece] = part
	return part
}

// dropPartial forgets a partial's block table; the caller decides where
// the piece goes next (have set or buckets).
func (p *Picker) dropPartial(part *partial) {
	p.removeOpen(part)
	last := p.active[len(p.active)-1]
	p.active[part.activeIdx] = last
	p.parts[last].activeIdx = part.activeIdx
	p.active = p.active[:len(p.active)-1]
	p.parts[part.piece] = nil
	p.spare = append(p.spare, part)
}

func (p *Picker) addOpen(part *partial) {
	if part.openIdx < 0 {
		part.openIdx = len(p.open)
		p.open = append(p.open, int32(part.piece))
	}
}

func (p *Picker) removeOpen(part *partial) {
	if part.openIdx < 0 {
		return
	}
	last := p.open[len(p.open)-1]
	p.open[part.openIdx] = last
	p.parts[last].openIdx = part.openIdx
	p.open = p.open[:len(p.open)-1]
	part.openIdx = -1
}

// request records that blk of part was requested from peer at now.
func (p *Picker) request(ps *peerState, peer PeerID, part *partial, blk int, now time.Time) {
	b := &part.blocks[blk]
	b.reqs[b.n] = peer
	b.n++
	if b.state == blockFree {
		b.state = blockRequested
		part.free--
		if part.free == 0 {
			p.removeOpen(part)
		}
	}
	ref := blockRef{int32(part.piece), int32(blk)}
	ps.serial++
	ps.out[ref] = ps.serial
	ps.queue = append(ps.queue, timed{ref, ps.serial, now.UnixNano()})
	if live := len(ps.queue) - ps.qhead; live > 2*len(ps.out)+64 {
		ps.compact()
	}
}

// compact drops queue entries that no longer match an outstanding request.
func (ps *peerState) compact() {
	q := ps.queue[:0]
	for _, t := range ps.queue[ps.qhead:] {
		if serial, ok := ps.out[t.ref]; ok && serial == t.serial {
			q = append(q, t)
		}
	}
	clear(ps.queue[len(q):])
	ps.queue, ps.qhead = q, 0
}

// unrequest removes peer from a block's requesters, freeing the block if
// nobody else has it requested. A piece left with nothing requested or
// received goes back among the unstarted pieces, so it is picked by rarity
// again rather than ahead of everything as a partial.
func (p *Picker) unrequest(part *partial, blk int, peer PeerID) {
	b := &part.blocks[blk]
	i := slices.Index(b.reqs[:b.n], peer)
	if i < 0 {
		return
	}
	b.n--
	b.reqs[i] = b.reqs[b.n]
	if b.n > 0 || b.state != blockRequested {
		return
	}
	b.state = blockFree
	part.free++
	part.nextFree = min(part.nextFree, blk)
	p.addOpen(part)
	if part.received == 0 && part.free == len(part.blocks) {
		p.dropPartial(part)
		if p.wanted(part.piece) {
			p.bucketAdd(part.piece)
		}
	}
}

// freeRef frees one outstanding request of a peer.
func (p *Picker) freeRef(peer PeerID, ps *peerState, ref blockRef) {
	delete(ps.out, ref)
	if part := p.parts[ref.piece]; part != nil {
		p.unrequest(part, int(ref.block), peer)
	}
}

// freePeer frees the peer's outstanding requests for which keep is nil or
// returns false.
func (p *Picker) freePeer(peer PeerID, ps *peerState, keep func(Request) bool) {
	for _, ref := range sortedRefs(ps) {
		if keep == nil || !keep(p.req(int(ref.piece), int(ref.block))) {
			p.freeRef(peer, ps, ref)
		}
	}
	if len(ps.out) == 0 {
		clear(ps.queue)
		ps.queue, ps.qhead = ps.queue[:0], 0
	}
}

// forgetRequests drops every peer's outstanding requests on a partial
// without freeing blocks, because the partial itself is about to go.
func (p *Picker) forgetRequests(part *partial) {
	for bi := range part.blocks {
		b := &part.blocks[bi]
		for _, peer := range b.reqs[:b.n] {
			if ps := p.peers[peer]; ps != nil {
				delete(ps.out, blockRef{int32(part.piece), int32(bi)})
			}
		}
	}
}

// BlockReceived records that peer delivered a block. It returns CANCELs
// for the other peers that had the same block requested (endgame), whether
// the piece now has every block and should be hash-checked, and dup when
// the data is not needed (piece verified or block already received): the
// session should then discard it. err reports a block that does not exist,
// or (ErrNotRequested) one this peer has no request outstanding for, with
// nothing changed: unasked data is never used, since a peer could
// otherwise push garbage into any piece. Session goroutine only.
func (p *Picker) BlockReceived(peer PeerID, piece, begin, length int) (cancels []Cancel, complete, dup bool, err error) {
	blk, err := p.blockOf(piece, begin, length)
	if err != nil {
		return nil, false, false, err
	}
	ref := blockRef{int32(piece), int32(blk)}
	ps := p.peers[peer]
	if ps == nil {
		return nil, false, false, ErrNotRequested
	}
	if _, ok := ps.out[ref]; !ok {
		return nil, false, false, ErrNotRequested
	}
	delete(ps.out, ref)
	if p.have.Test(uint(piece)) {
		return nil, false, true, nil
	}
	part := p.parts[piece]
	if part == nil {
		part = p.startPiece(piece)
	}
	b := &part.blocks[blk]
	if b.state == blockReceived {
		p.unrequest(part, blk, peer)
		return nil, false, true, nil
	}
	for _, other := range b.reqs[:b.n] {
		if other == peer {
			continue
		}
		cancels = append(cancels, Cancel{Peer: other, Request: p.req(piece, blk)})
		if ps := p.peers[other]; ps != nil {
			delete(ps.out, ref)
		}
	}
	if b.state == blockFree {
		part.free--
		if part.free == 0 {
			p.removeOpen(part)
		}
	}
	b.state, b.n = blockReceived, 0
	part.received++
	if !slices.Contains(part.contrib, peer) {
		part.contrib = append(part.contrib, peer)
	}
	return cancels, part.received == len(part.blocks), false, nil
}

// PieceRequests lists the requests outstanding on a started piece, peer by
// peer, so the session can cancel them before PieceFailed forgets them.
// Session goroutine only.
func (p *Picker) PieceRequests(piece int) []Cancel {
	if piece < 0 || piece >= p.n || p.parts == nil || p.parts[piece] == nil {
		return nil
	}
	part := p.parts[piece]
	var out []Cancel
	for bi := range part.blocks {
		b := &part.blocks[bi]
		for _, peer := range b.reqs[:b.n] {
			out = append(out, Cancel{Peer: peer, Request: p.req(piece, bi)})
		}
	}
	return out
}

// RequestRejected records a REJECT REQUEST (BEP 6): the block becomes free
// unless another peer has it requested. ErrNotRequested means the peer
// rejected something we never asked it for. Session goroutine only.
func (p *Picker) RequestRejected(peer PeerID, r Request) error {
	return p.drop(peer, r)
}

// RequestCancelled records that the session sent CANCEL for r; the block
// becomes free unless another peer has it requested. Session goroutine only.
func (p *Picker) RequestCancelled(peer PeerID, r Request) error {
	return p.drop(peer, r)
}

func (p *Picker) drop(peer PeerID, r Request) error {
	blk, err := p.blockOf(r.Piece, r.Begin, r.Length)
	if err != nil {
		return err
	}
	ps := p.peers[peer]
	ref := blockRef{int32(r.Piece), int32(blk)}
	if ps == nil {
		return ErrNotRequested
	}
	if _, ok := ps.out[ref]; !ok {
		return ErrNotRequested
	}
	p.freeRef(peer, ps, ref)
	return nil
}

// PeerChoked frees the peer's outstanding requests, except those keep
// returns true for (with the fast extension, requests for allowed-fast
// pieces survive a choke; the session knows which). keep may be nil.
// Session goroutine only.
func (p *Picker) PeerChoked(peer PeerID, keep func(Request) bool) {
	if ps := p.peers[peer]; ps != nil {
		p.freePeer(peer, ps, keep)
	}
}

// Timeouts frees every request sent at or before now-timeout and returns
// them, ordered by peer then block, so the session can send CANCEL and
// count the peer as snubbed. Cost is proportional to the number of peers
// plus the requests that expired. Session goroutine only.
func (p *Picker) Timeouts(now time.Time, timeout time.Duration) []Cancel {
	limit := now.Add(-timeout).UnixNano()
	ids := make([]PeerID, 0, len(p.peers))
	for id := range p.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []Cancel
	for _, id := range ids {
		ps := p.peers[id]
		start := len(out)
		for ps.qhead < len(ps.queue) && ps.queue[ps.qhead].at <= limit {
			t := ps.queue[ps.qhead]
			ps.queue[ps.qhead] = timed{}
			ps.qhead++
			if serial, ok := ps.out[t.ref]; ok && serial == t.serial {
				out = append(out, Cancel{Peer: id, Request: p.req(int(t.ref.piece), int(t.ref.block))})
				p.freeRef(id, ps, t.ref)
			}
		}
		if ps.qhead > len(ps.queue)/2 {
			ps.compact()
		}
		slices.SortFunc(out[start:], func(a, b Cancel) int {
			if a.Piece != b.Piece {
				return a.Piece - b.Piece
			}
			return a.Begin - b.Begin
		})
	}
	return out
}
