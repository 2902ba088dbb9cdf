package netio

import (
	"container/list"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

var (
	errUnknownTorrent = errors.New("netio: handshake for a torrent we do not have")
	errWrongTorrent   = errors.New("netio: peer answered for another torrent")
	errInboundFull    = errors.New("netio: peer sends faster than its session decodes")
	errSessionBehind  = errors.New("netio: session too far behind on this peer")
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

// peerConn is one connection: a transport below, its protocol stack, and
// above them the session's handle. Fields without atomics belong to the
// connection's event loop; the session reaches it only through the
// engine.PeerConn methods, which are safe from any goroutine.
type peerConn struct {
	srv      *Server
	tr       transport // set by open, under out.mu (see Close)
	addr     netip.AddrPort
	outbound bool
	encrypt  bool // outbound: MSE first (see Server.dial)
	// pending (and pendingAt below) belong to the server's pendingSet,
	// under its mutex: the connection has not finished its handshake.
	pending   bool
	closed    atomic.Bool
	sess      *engine.Session // outbound: the torrent we dialed for; inbound: after handshake
	peer      *engine.Peer
	pendingAt *list.Element
	queued    atomic.Int64 // bytes passed to Send and not yet written
	outbuf    atomic.Int64 // the transport's unsent bytes, sampled on the loop
	timer     *time.Timer
	st        stack
	out       outQueue
	// silentHangup, on a TCP connection we dialed, runs instead of
	// DialFailed if the peer closes it before sending a byte (a peer
	// that takes only uTP), and reports whether it took over. Loop-owned,
	// like heard.
	silentHangup func() bool
	heard        bool // bytes arrived
}

var _ engine.ConnKind = (*peerConn)(nil)

func newPeerConn(s *Server, addr netip.AddrPort, outbound bool) *peerConn {
	return &peerConn{srv: s, addr: addr, outbound: outbound}
}

// open runs on the event loop once the transport has the connection; false
// when it was closed (evicted from the pending set) before the loop had it.
// A dialed connection speaks first: our handshake goes out, through the
// outbound stages like everything else.
func (pc *peerConn) open(tr transport) bool {
	// The queue's mutex also orders this against a Close from another
	// goroutine (an eviction) before the loop had the connection.
	pc.out.mu.Lock()
	pc.tr = tr
	pc.out.mu.Unlock()
	if pc.closed.Load() {
		return false
	}
	policy := pc.srv.cfg.Encryption
	if pc.outbound {
		// Ya is computed here, on the loop, and the secret later: a 160-bit
		// exponent modulo 768 bits takes about 0.07 ms (BenchmarkMSEModExp),
		// too little to be worth a hand-off to another goroutine and back.
		if pc.st.cipher.dial(pc.encrypt, policy, pc.sess.InfoHash(), rand.Reader) != nil {
			return false
		}
	} else {
		pc.st.cipher.answer(policy, pc.srv.lookup, rand.Reader)
	}
	pc.timer = time.AfterFunc(pc.srv.cfg.HandshakeTimeout, func() {
		if !pc.st.hs.done.Load() {
			pc.Close()
		}
	})
	if pc.outbound {
		// Under MSE the stage holds it back as the initial payload.
		pc.Send(pc.greeting(pc.sess.InfoHash()))
	}
	return true
}

// greeting is our handshake for the torrent ih.
func (pc *peerConn) greeting(ih metainfo.Hash) []byte {
	return greeting(wire.Handshake{
		Reserved: wire.DefaultReserved(pc.srv.cfg.DHT), InfoHash: ih, PeerID: pc.srv.client.PeerID(),
	})
}

// onTraffic runs on the event loop: what the transport holds goes through
// the stack (handshake first, then up to FramesPerWake frames), and the
// messages, which the session will own, to the session. An error closes
// the connection.
func (pc *peerConn) onTraffic() error {
	pc.heard = true
	if pc.tr.Buffered()+pc.st.held() > maxInbound {
		return errInboundFull
	}
	msgs, more, err := pc.st.input(pc.tr, pc.srv.cfg.FramesPerWake, pc)
	if err != nil {
		return err
	}
	if pc.st.cipher.pending() {
		// The encrypted handshake answered: it leaves with the next flush.
		pc.kick()
	}
	if more {
		pc.tr.Wake()
	}
	if len(msgs) > 0 && pc.peer.Deliver(msgs) != nil {
		return errSessionBehind
	}
	return nil
}

// handshook checks the peer's handshake, answers an inbound one, and
// attaches the connection to its session; implements handshakeHandler.
func (pc *peerConn) handshook(hs wire.Handshake) (maxFrame int, err error) {
	if pc.outbound {
		if hs.InfoHash != pc.sess.InfoHash() {
			return 0, errWrongTorrent
		}
	} else {
		pc.sess = pc.srv.client.Session(hs.InfoHash)
		if pc.sess == nil {
			return 0, errUnknownTorrent
		}
		// Queued ahead of anything the session sends once attached.
		pc.Send(pc.greeting(hs.InfoHash))
	}
	pieces := 0 // a magnet's size is unknown until its metadata arrives
	if mi := pc.sess.MetaInfo(); mi != nil {
		pieces = mi.NumPieces()
	}
	pc.timer.Stop()
	pc.srv.pending.remove(pc)
	pc.peer = pc.sess.Attach(pc, hs, pc.outbound)
	return wire.MaxFrame(wire.DefaultBlockLen, pieces), nil
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
		if pc.st.cipher.negotiating() && pc.srv.cfg.Encryption == EncryptionPrefer && pc.srv.redialPlain(pc.addr, pc.sess) {
			return
		}
		if err != nil && !pc.heard && pc.silentHangup != nil && pc.silentHangup() {
			return
		}
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
	// The flush takes what is queued by the time it runs.
	if arm {
		pc.startFlush()
	}
}

// startFlush asks the loop for the flush just armed.
func (pc *peerConn) startFlush() {
	if pc.tr.Flush() != nil {
		pc.flush(false, net.ErrClosed)
	}
}

// kick arms a flush with nothing queued, for the stack's own bytes. On the
// loop only: they are the stack's, written in the flush.
func (pc *peerConn) kick() {
	q := &pc.out
	q.mu.Lock()
	arm := !q.armed
	q.armed = true
	q.mu.Unlock()
	if arm {
		pc.startFlush()
	}
}

// flush runs on the loop (or once, off it, when the loop refused the
// task): the outbound stages, one writev for everything queued, then the
// releases. Implements flusher.
func (pc *peerConn) flush(onLoop bool, err error) {
	q := &pc.out
	q.mu.Lock()
	b := q.cur
	q.cur, q.spare, q.armed = q.spare, outBatch{}, false
	q.mu.Unlock()
	var n int64
	for _, buf := range b.bufs {
		n += int64(len(buf))
	}
	if onLoop && err == nil && (len(b.bufs) > 0 || pc.st.cipher.pending()) {
		pc.st.output(b.bufs, pc.tr)
	}
	pc.queued.Add(-n)
	if onLoop {
		pc.outbuf.Store(int64(pc.tr.Unsent()))
	}
	// The transport wrote or copied every buffer, or never will touch them.
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
}

// NotifyWritable implements engine.PeerConn. A transport has no writable
// callback (gnet has none), so its unsent bytes are sampled on the loop, backing off
// from 1 ms to 64 ms, until it is under bound.
func (pc *peerConn) NotifyWritable(bound int) {
	pc.pollDrain(bound, time.Millisecond)
}

func (pc *peerConn) pollDrain(bound int, wait time.Duration) {
	time.AfterFunc(wait, func() {
		if pc.closed.Load() {
			return
		}
		err := pc.tr.Do(func(err error) {
			pc.outbuf.Store(int64(pc.tr.Unsent()))
			switch {
			case err != nil || pc.closed.Load():
			case pc.Buffered() <= bound:
				pc.peer.Writable()
			default:
				pc.pollDrain(bound, min(2*wait, 64*time.Millisecond))
			}
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
		tr := pc.tr
		pc.out.mu.Unlock()
		if tr != nil {
			tr.Close()
		}
	}
}

// UTP reports whether the connection is uTP, for the PEX flag that says
// so. Any goroutine once the session has the connection.
func (pc *peerConn) UTP() bool {
	_, ok := pc.tr.(*utpTransport)
	return ok
}

// Encrypted implements engine.ConnKind: RC4 both ways. The MSE handshake
// is over by the BitTorrent handshake, whose arrival calls Attach, on
// the loop that owns the stage.
func (pc *peerConn) Encrypted() bool { return pc.st.cipher.mode == cipherRC4 }

// Transport implements engine.ConnKind.
func (pc *peerConn) Transport() string {
	if pc.UTP() {
		return "utp"
	}
	return "tcp"
}

// RemoteAddr implements engine.PeerConn.
func (pc *peerConn) RemoteAddr() netip.AddrPort { return pc.addr }

// Buffered implements engine.PeerConn: bytes waiting to be written.
func (pc *peerConn) Buffered() int { return int(pc.queued.Load() + pc.outbuf.Load()) }

// Unsent implements engine.PeerConn: what the transport still held after
// its last write on the loop.
func (pc *peerConn) Unsent() int { return int(pc.outbuf.Load()) }
