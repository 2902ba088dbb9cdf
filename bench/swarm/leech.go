package swarm

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"hash"
	"slices"
	"time"

	"gotorrentserver/engine/wire"
)

// leecher is a connection's download state, owned by its event loop. It
// walks the pieces in order from a start piece that differs per connection,
// wrapping around forever (the data is not kept), so many leechers spread
// over the torrent and a small torrent still keeps them busy.
type leecher struct {
	c           *conn
	numPieces   int
	nextPiece   int
	nextBegin   uint32
	outstanding map[uint64]struct{}
	retry       []uint64 // dropped by a choke or rejected: asked again first
	prog        map[uint32]*progress
	// With pacing: held are blocks arrived and not yet counted (waiting
	// for RTT/2 and the cap; they count against Pipeline, so what the
	// remote has in flight stays bounded); sendq are requests decided and
	// not yet sent (outstanding already).
	paced bool
	held  fifo
	sendq fifo
	bkt   bucket
}

// progress hashes one piece as its blocks arrive; blocks that come early
// wait in pending (at most a pipeline's worth).
type progress struct {
	h       hash.Hash
	size    uint32
	next    uint32
	pending map[uint32][]byte
}

func blockKey(index, begin uint32) uint64 { return uint64(index)<<32 | uint64(begin) }

func newLeecher(c *conn) *leecher {
	n := c.t.mi.NumPieces()
	id := uint64(c.slot)
	if c.slot < 0 {
		id = c.sw.ids.Load()
	}
	return &leecher{c: c, numPieces: n, nextPiece: int(word(0x1eec4, id) % uint64(n)),
		outstanding: map[uint64]struct{}{}, prog: map[uint32]*progress{},
		paced: c.sw.cfg.paced(), bkt: newBucket(c.sw.cfg.RateCap, c.sw.cfg.BlockLen, c.sw.clock())}
}

func (l *leecher) pieceSize(i uint32) uint32 { return uint32(l.c.t.mi.PieceSize(int(i))) }

// fill requests blocks until Pipeline are outstanding (or held), while
// unchoked; with an RTT they leave RTT/2 later.
func (l *leecher) fill() {
	c, cfg := l.c, &l.c.sw.cfg
	var at time.Duration
	if cfg.RTT > 0 {
		at = c.sw.clock() + cfg.RTT/2
	}
	for !c.choked && len(l.outstanding)+l.held.len() < cfg.Pipeline {
		var k uint64
		if len(l.retry) > 0 {
			k, l.retry = l.retry[0], l.retry[1:]
		} else {
			k = blockKey(uint32(l.nextPiece), l.nextBegin)
			if _, dup := l.outstanding[k]; dup {
				return // wrapped around onto our own requests
			}
			if cfg.Verify && l.nextBegin == 0 {
				if l.prog[uint32(l.nextPiece)] != nil {
					return // the previous lap of this piece is still arriving
				}
				l.prog[uint32(l.nextPiece)] = &progress{h: sha1.New(), size: l.pieceSize(uint32(l.nextPiece))}
			}
			l.nextBegin += uint32(cfg.BlockLen)
			if l.nextBegin >= l.pieceSize(uint32(l.nextPiece)) {
				l.nextPiece, l.nextBegin = (l.nextPiece+1)%l.numPieces, 0
			}
		}
		index, begin := uint32(k>>32), uint32(k)
		length := min(uint32(cfg.BlockLen), l.pieceSize(index)-begin)
		if at > 0 {
			l.sendq.push(timed{at: at, key: k, length: length})
		} else {
			c.out = wire.AppendRequest(c.out, index, begin, length)
		}
		l.outstanding[k] = struct{}{}
	}
}

// choke: without the Fast extension (we do not offer it) a choke drops
// every request; they are asked again, in order, after the next unchoke.
// Requests not yet sent are not sent; blocks held still count.
func (l *leecher) choke() {
	for k := range l.outstanding {
		l.retry = append(l.retry, k)
	}
	clear(l.outstanding)
	l.sendq.clear()
	slices.Sort(l.retry)
}

func (l *leecher) reject(index, begin uint32) {
	k := blockKey(index, begin)
	if _, ok := l.outstanding[k]; ok {
		delete(l.outstanding, k)
		l.retry = append(l.retry, k)
	}
}

// piece takes a block: counted if we asked for it (a block that crossed a
// choke on the wire counts too), fed to the piece's hash when verifying.
// With pacing it is held, and counted (asking for the next) by pace.
func (l *leecher) piece(index, begin uint32, block []byte) error {
	sw := l.c.sw
	k := blockKey(index, begin)
	if _, ok := l.outstanding[k]; ok {
		delete(l.outstanding, k)
	} else if i := slices.Index(l.retry, k); i >= 0 {
		l.retry = slices.Delete(l.retry, i, i+1)
	} else {
		sw.cnt.unexpected.Add(1)
		return nil
	}
	if want := min(uint32(sw.cfg.BlockLen), l.pieceSize(index)-begin); uint32(len(block)) != want {
		return fmt.Errorf("swarm: block %d/%d of %d bytes, asked %d", index, begin, len(block), want)
	}
	if sw.cfg.Verify {
		l.hash(index, begin, block)
	}
	if l.paced {
		l.held.push(timed{at: sw.clock() + sw.cfg.RTT/2, key: k, length: uint32(len(block))})
		return nil
	}
	l.count(uint32(len(block)))
	l.fill()
	return nil
}

func (l *leecher) count(n uint32) { l.c.counted(n) }

func (l *leecher) hash(index, begin uint32, block []byte) {
	p := l.prog[index]
	switch {
	case p == nil || begin < p.next:
		return // a duplicate of a block already hashed
	case begin > p.next:
		if p.pending == nil {
			p.pending = map[uint32][]byte{}
		}
		p.pending[begin] = bytes.Clone(block)
		return
	}
	p.h.Write(block)
	p.next += uint32(len(block))
	for {
		b, ok := p.pending[p.next]
		if !ok {
			break
		}
		delete(p.pending, p.next)
		p.h.Write(b)
		p.next += uint32(len(b))
	}
	if p.next < p.size {
		return
	}
	var sum [20]byte
	if bytes.Equal(p.h.Sum(sum[:0]), l.c.t.mi.Pieces[index][:]) {
		l.c.sw.cnt.piecesOK.Add(1)
	} else {
		l.c.sw.cnt.piecesBad.Add(1)
	}
	delete(l.prog, index)
}
