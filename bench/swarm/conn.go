package swarm

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine/wire"
)

var errWrongTorrent = errors.New("swarm: handshake for another torrent")

// conn is one peer connection. Everything but churned and moved belongs to
// the connection's event loop.
type conn struct {
	sw      *Swarm
	id      uint64
	slot    int // -1: accepted
	inbound bool
	t       *torrent  // nil on an accepted connection until its handshake
	gc      gnet.Conn // nil over uTP
	lk      link      // set on open, before the slot holds the connection
	// With MSE: enc until the link takes it, dec, and rx, decrypted bytes
	// not yet consumed (a partial frame).
	enc     cipher.Stream
	dec     cipher.Stream
	rx      []byte
	peerID  [20]byte
	hs      bool
	corrupt bool
	choked  bool // the remote chokes us
	unchoke bool // we unchoked the remote (Seed)
	failed  bool
	churned atomic.Bool // closed by churn: reopen at once
	out     []byte      // small frames queued during one wake-up
	lch     *leecher
	ans     *answerer     // Seed with pacing: answers waiting for their time
	pc      *pacer        // with pacing: its loop's pacer, from the handshake
	pidx    int           // its index in pc
	start   time.Duration // handshake, on the swarm's clock
	moved   atomic.Int64  // payload bytes counted (Leech) or sent (Seed)
}

func (s *Swarm) newConn(slot int, t *torrent, inbound bool) *conn {
	n := s.ids.Add(1)
	c := &conn{sw: s, id: n, slot: slot, t: t, inbound: inbound, choked: true, pidx: -1}
	copy(c.peerID[:], fmt.Sprintf("-SW0001-%012d", n%1e12))
	if s.cfg.Mode == Seed && s.cfg.Corrupt > 0 {
		// Spread evenly: the k-th connection corrupts when the running
		// fraction would fall below Corrupt.
		c.corrupt = float64(int64(float64(n)*s.cfg.Corrupt)) > float64(int64(float64(n-1)*s.cfg.Corrupt))
	}
	return c
}

func (c *conn) handshake() []byte {
	return wire.AppendHandshake(nil, wire.Handshake{InfoHash: c.t.mi.InfoHash, PeerID: c.peerID})
}

// OnOpen runs on the event loop; a dialed connection sends its handshake
// (over MSE it went inside the MSE handshake, and what the peer sent
// after that is read at once).
func (s *Swarm) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*conn)
	c.gc = gc
	if c.enc != nil {
		c.lk = &mseLink{gc: gc, enc: c.enc, ctx: s.ctx}
		c.enc = nil
	} else {
		c.lk = tcpLink{gc}
	}
	s.opened(c)
	switch {
	case c.inbound:
	case c.dec != nil:
		if !c.turnDone(c.consumeRx()) {
			return nil, gnet.Close
		}
	default:
		return c.handshake(), gnet.None
	}
	return nil, gnet.None
}

// opened counts a connection open and lets the control loop find it.
func (s *Swarm) opened(c *conn) {
	s.cnt.open.Add(1)
	if c.slot >= 0 {
		s.slots[c.slot].conn.Store(c)
	}
}

// OnClose runs on the event loop.
func (s *Swarm) OnClose(gc gnet.Conn, _ error) gnet.Action {
	if c, ok := gc.Context().(*conn); ok {
		s.closed(c)
	}
	return gnet.None
}

// closed runs on c's loop once c is closed. A dialed slot is reopened: at
// once after churn, after RedialDelay otherwise.
func (s *Swarm) closed(c *conn) {
	s.cnt.open.Add(-1)
	if c.hs {
		s.cnt.handshaken.Add(-1)
		s.unregister(c)
	}
	if c.slot < 0 {
		return
	}
	s.slots[c.slot].conn.Store(nil)
	switch {
	case s.stopping():
	case c.churned.Load():
		s.redial(c.slot, 0)
	default:
		if !c.failed {
			s.cnt.remoteCloses.Add(1)
		}
		s.redial(c.slot, s.cfg.RedialDelay)
	}
}

// OnTraffic decodes every whole frame buffered and answers it.
func (s *Swarm) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	b, _ := gc.Peek(-1)
	var n int
	var err error
	if c.dec != nil {
		c.decrypt(b)
		n, err = len(b), c.consumeRx()
	} else {
		n, err = c.consume(b)
	}
	if n > 0 {
		gc.Discard(n) // Discard(0) would drop everything buffered
	}
	if !c.turnDone(err) {
		return gnet.Close
	}
	return gnet.None
}

// turnDone ends a turn of received bytes, whose handling returned err:
// the timed work due, then what the turn queued goes out. False when err
// closes the connection (a protocol error, counted).
func (c *conn) turnDone(err error) bool {
	if err != nil {
		c.failed = true
		c.sw.cnt.protocolErrors.Add(1)
		msg := err.Error()
		c.sw.lastErr.Store(&msg)
		return false
	}
	if c.pc != nil {
		c.pace(c.sw.clock())
	}
	c.flush()
	return true
}

// consume handles the handshake and then every whole frame at the start of
// b, and returns how many bytes it used; a partial frame waits for more. b
// is only valid during the call.
func (c *conn) consume(b []byte) (int, error) {
	used := 0
	if !c.hs {
		if len(b) < wire.HandshakeLen {
			return 0, nil
		}
		hs, err := wire.ParseHandshake(b[:wire.HandshakeLen])
		if err != nil {
			return wire.HandshakeLen, err
		}
		used = wire.HandshakeLen
		if c.inbound {
			if c.t = c.sw.byHash[hs.InfoHash]; c.t == nil {
				return used, errWrongTorrent
			}
			c.out = append(c.out, c.handshake()...)
		} else if hs.InfoHash != c.t.mi.InfoHash {
			return used, errWrongTorrent
		}
		c.hs = true
		c.sw.cnt.handshaken.Add(1)
		c.greet()
		c.sw.register(c)
	}
	for {
		rest := b[used:]
		if len(rest) < 4 {
			return used, nil
		}
		n := int(binary.BigEndian.Uint32(rest)) + 4
		if n > c.t.maxFrame {
			return used, fmt.Errorf("swarm: frame of %d bytes", n)
		}
		if len(rest) < n {
			return used, nil
		}
		if err := c.frame(rest[:n]); err != nil {
			return used, err
		}
		used += n
	}
}

// greet sends what follows the handshake in each mode.
func (c *conn) greet() {
	switch c.sw.cfg.Mode {
	case Seed:
		c.out = append(c.out, c.t.bitfield...)
		if c.sw.cfg.paced() {
			c.ans = &answerer{bkt: newBucket(c.sw.cfg.RateCap, c.sw.cfg.BlockLen, c.sw.clock())}
		}
	case Leech:
		c.lch = newLeecher(c)
		c.out = wire.AppendSimple(c.out, wire.Interested)
	}
}

// frame handles one whole frame; f stays valid only during the call.
func (c *conn) frame(f []byte) error {
	if len(f) == 4 {
		return nil // keep-alive
	}
	p := f[5:]
	switch t := wire.Type(f[4]); t {
	case wire.Choke:
		c.choked = true
		if c.lch != nil {
			c.lch.choke()
		}
	case wire.Unchoke:
		c.choked = false
		if c.lch != nil {
			c.lch.fill()
		}
	case wire.Interested:
		if c.sw.cfg.Mode == Seed && !c.unchoke {
			c.unchoke = true
			c.out = wire.AppendSimple(c.out, wire.Unchoke)
		}
	case wire.Request:
		if len(p) != 12 {
			return fmt.Errorf("swarm: request of %d bytes", len(p))
		}
		if c.sw.cfg.Mode == Seed && c.unchoke {
			index, begin, length := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:])
			if err := c.checkRequest(index, begin, length); err != nil {
				return err
			}
			if c.ans != nil {
				return c.ans.request(c, index, begin, length)
			}
			c.serve(index, begin, length)
		}
	case wire.Cancel:
		if len(p) == 12 && c.ans != nil {
			c.ans.cancel(binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:]))
		}
	case wire.Piece:
		if len(p) < 8 {
			return fmt.Errorf("swarm: piece of %d bytes", len(p))
		}
		if c.lch != nil {
			return c.lch.piece(binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), p[8:])
		}
		c.sw.cnt.unexpected.Add(1)
	case wire.Reject:
		if len(p) == 12 && c.lch != nil {
			c.lch.reject(binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]))
		}
	}
	// Bitfield, have, have-all, extended and unknown ids need no answer:
	// leechers assume the remote is a seed, seeders have it all; an
	// unpaced seeder has answered every request before its cancel came.
	return nil
}

// scratch holds generated blocks until they are written; gnet copies what
// the socket does not take at once, so buffers return to the pool at once.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// checkRequest: a request outside the torrent, or of no or too many bytes,
// is a protocol error (checked on arrival, also when the answer waits).
func (c *conn) checkRequest(index, begin, length uint32) error {
	mi := c.t.mi
	if int(index) >= mi.NumPieces() || length == 0 || length > wire.MaxBlockLen ||
		int64(begin)+int64(length) > mi.PieceSize(int(index)) {
		return fmt.Errorf("swarm: bad request %d/%d/%d", index, begin, length)
	}
	return nil
}

// serve answers a checked request with a block of the payload (corrupted
// on a corrupt connection). Blocks are batched with other frames of the
// same wake-up and written in one call.
func (c *conn) serve(index, begin, length uint32) {
	mi := c.t.mi
	if len(c.out)+13+int(length) > 1<<20 {
		c.flush()
	}
	if cap(c.out) < 1<<20 {
		c.out = append((*scratch.Get().(*[]byte))[:0], c.out...)
	}
	c.out = wire.AppendPieceHeader(c.out, index, begin, length)
	n := len(c.out)
	c.out = slices.Grow(c.out, int(length))[:n+int(length)]
	block := c.out[n:]
	c.t.payload.fill(block, int64(index)*mi.PieceLength+int64(begin))
	if c.corrupt {
		block[0] ^= 0xff
		block[len(block)-1] ^= 0xff
	}
	c.counted(length)
}

// counted adds payload bytes moved to every counter that holds them: the
// swarm's (up or down by mode), the slot's, the connection's, the
// torrent's.
func (c *conn) counted(n uint32) {
	if c.sw.cfg.Mode == Seed {
		c.sw.cnt.up.Add(int64(n))
	} else {
		c.sw.cnt.down.Add(int64(n))
	}
	if c.slot >= 0 {
		c.sw.slots[c.slot].bytes.Add(int64(n))
	}
	c.moved.Add(int64(n))
	c.t.moved.Add(int64(n))
}

// flush writes the frames queued during this wake-up.
func (c *conn) flush() {
	if len(c.out) == 0 {
		return
	}
	c.lk.write(c.out)
	if cap(c.out) >= 1<<20 {
		b := c.out[:0]
		scratch.Put(&b)
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
}
