package netio

import (
	"container/list"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

var (
	errUnknownTorrent = errors.New("netio: handshake for a torrent we do not have")
	errWrongTorrent   = errors.New("netio: peer answered for another torrent")
)

// Per-connection buffer bounds. A peer that does not read, or that sends
// faster than its session takes messages, is closed at these instead of
// growing our memory; honest peers never come near them.
const (
	// maxUnsent bounds bytes queued for a peer and not yet written. Uploads
	// stop being read from disk at 1 MiB unsent (engine backpressure); the
	// rest is control messages and metadata answers. A peer that sent
	// 50,000 metadata requests without reading once grew RSS by 1.3 GiB.
	maxUnsent = 8 << 20
	// maxInbound bounds bytes received and not yet decoded. A download
	// pipeline holds at most picker.CapDepth (500) blocks, 8 MiB; frames
	// are decoded FramesPerWake at a time, so only a peer flooding small
	// frames faster than the loop decodes them gets here.
	maxInbound = 8<<20 + 2*(16<<10+13)
)

// peerConn is one connection. Fields without atomics belong to the
// connection's event loop; the session reaches it only through the
// engine.PeerConn methods, which are safe from any goroutine.
type peerConn struct {
	srv      *Server
	c        gnet.Conn // set by open, under out.mu (see Close)
	addr     netip.AddrPort
	outbound bool
	// pending (and pendingAt below) belong to the server's pendingSet,
	// under its mutex: the connection has not finished its handshake.
	pending   bool
	hsDone    atomic.Bool
	closed    atomic.Bool
	sess      *engine.Session // outbound: the torrent we dialed for; inbound: after handshake
	peer      *engine.Peer
	maxFrame  int
	pendingAt *list.Element
	queued    atomic.Int64 // bytes passed to Send and not yet written
	outbuf    atomic.Int64 // gnet's outbound buffer, sampled on the loop
	timer     *time.Timer
	out       outQueue
	flushFn   gnet.AsyncCallback // pc.flush, made once rather than per send
}

func newPeerConn(s *Server, addr netip.AddrPort, outbound bool) *peerConn {
	pc := &peerConn{srv: s, addr: addr, outbound: outbound}
	pc.flushFn = pc.flush
	return pc
}

// open runs on the event loop once gnet has the connection; false when it
// was closed (evicted from the pending set) before the loop had it.
func (pc *peerConn) open(c gnet.Conn) bool {
	// The queue's mutex also orders this against a Close from another
	// goroutine (an eviction) before the loop had the connection.
	pc.out.mu.Lock()
	pc.c = c
	pc.out.mu.Unlock()
	if pc.closed.Load() {
		return false
	}
	pc.timer = time.AfterFunc(pc.srv.cfg.HandshakeTimeout, func() {
		if !pc.hsDone.Load() {
			pc.Close()
		}
	})
	return true
}

func (pc *peerConn) handshakeBytes(ih metainfo.Hash) []byte {
	return wire.AppendHandshake(make([]byte, 0, wire.HandshakeLen), wire.Handshake{
		Reserved: wire.DefaultReserved(pc.srv.cfg.DHT), InfoHash: ih, PeerID: pc.srv.client.PeerID(),
	})
}

// onTraffic runs on the event loop: handshake first, then up to
// FramesPerWake frames, decoded into messages the session will own.
func (pc *peerConn) onTraffic() gnet.Action {
	c := pc.c
	if c.InboundBuffered() > maxInbound {
		return gnet.Close
	}
	if !pc.hsDone.Load() {
		buf, _ := c.Peek(wire.HandshakeLen)
		if len(buf) < wire.HandshakeLen {
			return gnet.None
		}
		hs, err := wire.ParseHandshake(buf)
		c.Discard(wire.HandshakeLen)
		if err != nil {
			return gnet.Close
		}
		if err := pc.handshake(hs); err != nil {
			return gnet.Close
		}
	}
	// One allocation per wake: requests, the bulk of a seed's traffic,
	// are 17 bytes each.
	msgs := make([]wire.Message, 0, min(pc.srv.cfg.FramesPerWake, c.InboundBuffered()/17+1))
	limited := true
	for range pc.srv.cfg.FramesPerWake {
		hdr, _ := c.Peek(4)
		n, err := wire.CheckFrame(hdr, pc.maxFrame)
		if errors.Is(err, wire.ErrTruncated) {
			limited = false
			break
		}
		if err != nil {
			return gnet.Close
		}
		if c.InboundBuffered() < n {
			limited = false
			break
		}
		frame, _ := c.Peek(n)
		msgs = append(msgs, wire.Message{})
		m := &msgs[len(msgs)-1]
		if n > 13 && frame[4] == byte(wire.Piece) {
			m.Block = engine.BlockBuffer(n - 13)[:0]
		}
		err = wire.Decode(frame, m)
		c.Discard(n)
		switch {
		case errors.Is(err, wire.ErrUnknownMessage):
			msgs = msgs[:len(msgs)-1]
		case err != nil:
			return gnet.Close
		}
	}
	if limited {
		// Whole frames may remain: come back after the loop served the
		// other connections. A partial frame waits for the socket instead.
		c.Wake(nil)
	}
	if len(msgs) > 0 && pc.peer.Deliver(msgs) != nil {
		return gnet.Close // its session is that far behind on this peer
	}
	return gnet.None
}

// handshake checks the peer's handshake, answers an inbound one, and
// attaches the connection to its session.
func (pc *peerConn) handshake(hs wire.Handshake) error {
	if pc.outbound {
		if hs.InfoHash != pc.sess.InfoHash() {
			return errWrongTorrent
		}
	} else {
		pc.sess = pc.srv.client.Session(hs.InfoHash)
		if pc.sess == nil {
			return errUnknownTorrent
		}
		pc.c.AsyncWrite(pc.handshakeBytes(hs.InfoHash), nil)
	}
	pieces := 0 // a magnet's size is unknown until its metadata arrives
	if mi := pc.sess.MetaInfo(); mi != nil {
		pieces = mi.NumPieces()
	}
	pc.maxFrame = wire.MaxFrame(wire.DefaultBlockLen, pieces)
	pc.hsDone.Store(true)
	pc.timer.Stop()
	pc.srv.pending.remove(pc)
	pc.peer = pc.sess.Attach(pc, hs, pc.outbound)
	return nil
}

func (pc *peerConn) onClose(err error) {
	pc.closed.Store(true)
	if pc.timer != nil {
		pc.timer.Stop()
	}
	pc.srv.pending.remove(pc)
	if pc.peer != nil {
		pc.peer.Closed(err)
	} else if pc.outbound && pc.sess != nil {
		if err == nil {
			err = errors.New("netio: closed during handshake")
		}
		pc.sess.DialFailed(pc.addr, err)
	}
}

// Send queues frames; implements engine.PeerConn. Safe from any goroutine.
func (pc *peerConn) Send(bufs ...[]byte) { pc.enqueue(nil, bufs...) }

// SendBlock implements engine.PeerConn: release runs once the loop has
// written or copied the block. If the loop never takes the write, release
// is not called: a second call could free a cache view another send still
// uses, a missing one only costs a recycle.
func (pc *peerConn) SendBlock(hdr, block []byte, release func()) {
	pc.enqueue(release, hdr, block)
}

// outQueue is what sessions and disk workers queued for one connection
// since the loop last wrote to it. Everything goes through it, in order,
// so that whatever piles up between two turns of the loop leaves in one
// writev: a seed answering 130,000 requests a second otherwise spent a
// syscall on each block. The byte count lives in peerConn.queued.
type outQueue struct {
	mu    sync.Mutex
	cur   outBatch
	spare outBatch // the last flush's slices, emptied, to append into next
	armed bool     // a flush is queued on the loop
}

type outBatch struct {
	bufs    [][]byte
	release []func()
}

// maxIOV keeps each writev under Linux's IOV_MAX (1024), past which it
// fails and gnet would close the connection.
const maxIOV = 512

func (pc *peerConn) enqueue(release func(), bufs ...[]byte) {
	if pc.closed.Load() {
		if release != nil {
			release()
		}
		return
	}
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	if pc.queued.Add(n)+pc.outbuf.Load() > maxUnsent {
		// The peer does not read what it asks for: it loses the
		// connection, we keep our memory.
		pc.queued.Add(-n)
		if release != nil {
			release()
		}
		pc.Close()
		return
	}
	q := &pc.out
	q.mu.Lock()
	q.cur.bufs = append(q.cur.bufs, bufs...)
	if release != nil {
		q.cur.release = append(q.cur.release, release)
	}
	arm := !q.armed
	q.armed = true
	q.mu.Unlock()
	// AsyncWritev with nothing to write is the way to run on the loop; the
	// flush callback takes what is queued by the time it runs.
	if arm && pc.c.AsyncWritev(nil, pc.flushFn) != nil {
		pc.flush(nil, net.ErrClosed)
	}
}

// flush runs on the loop (or once, off it, when the loop refused the
// task): one writev for everything queued, then the releases.
func (pc *peerConn) flush(c gnet.Conn, err error) error {
	q := &pc.out
	q.mu.Lock()
	b := q.cur
	q.cur, q.spare, q.armed = q.spare, outBatch{}, false
	q.mu.Unlock()
	var n int64
	for _, buf := range b.bufs {
		n += int64(len(buf))
	}
	for rest := b.bufs; len(rest) > 0 && err == nil && c != nil; {
		k := min(len(rest), maxIOV)
		_, err = c.Writev(rest[:k])
		rest = rest[k:]
	}
	pc.queued.Add(-n)
	if c != nil {
		pc.outbuf.Store(int64(c.OutboundBuffered()))
	}
	// gnet wrote or copied every buffer, or never will touch them.
	for _, r := range b.release {
		r()
	}
	// Flushes run one at a time on the loop, so these slices are free for
	// the queue to append into once the next flush has taken the current.
	clear(b.bufs)
	clear(b.release)
	q.mu.Lock()
	q.spare = outBatch{bufs: b.bufs[:0], release: b.release[:0]}
	q.mu.Unlock()
	return nil
}

// NotifyWritable implements engine.PeerConn. gnet has no writable
// callback, so the outbound buffer is sampled on the loop, backing off
// from 1 ms to 64 ms, until it is under bound.
func (pc *peerConn) NotifyWritable(bound int) {
	pc.pollDrain(bound, time.Millisecond)
}

func (pc *peerConn) pollDrain(bound int, wait time.Duration) {
	time.AfterFunc(wait, func() {
		if pc.closed.Load() {
			return
		}
		err := pc.c.Wake(func(c gnet.Conn, err error) error {
			pc.outbuf.Store(int64(c.OutboundBuffered()))
			switch {
			case err != nil || pc.closed.Load():
			case pc.Buffered() <= bound:
				pc.peer.Writable()
			default:
				pc.pollDrain(bound, min(2*wait, 64*time.Millisecond))
			}
			return nil
		})
		if err != nil {
			pc.closed.Store(true)
		}
	})
}

// Close closes the connection; implements engine.PeerConn. Safe from any
// goroutine, also before the loop has the connection (open then refuses it).
func (pc *peerConn) Close() {
	if pc.closed.CompareAndSwap(false, true) {
		pc.out.mu.Lock()
		c := pc.c
		pc.out.mu.Unlock()
		if c != nil {
			c.Close()
		}
	}
}

// RemoteAddr implements engine.PeerConn.
func (pc *peerConn) RemoteAddr() netip.AddrPort { return pc.addr }

// Buffered implements engine.PeerConn: bytes waiting to be written.
func (pc *peerConn) Buffered() int { return int(pc.queued.Load() + pc.outbuf.Load()) }
