package utp

import (
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

const (
	stateSynSent = iota
	stateConnected
	// stateClosing: the handler is gone; the connection stays until our
	// FIN is acknowledged or linger passes, acknowledging what comes.
	stateClosing
	stateGone
)

// Conn is one uTP connection. Its stream methods (Buffered, Peek, Discard,
// Write, Unsent, Wake) run on the Mux's loop only, in a Handler callback
// or a Do task; Do, Close and the addresses are safe from any goroutine.
// Its unexported methods (here, send.go, recv.go, timers.go and
// congestion.go) run on the loop too.
type Conn struct {
	e              *endpoint
	h              Handler
	addr           netip.AddrPort
	recvID, sendID uint16
	mss            int
	state          uint8
	reported       bool        // h.Closed has run
	dead           atomic.Bool // reported or gone: Do refuses

	// Send side. out is a ring of the packets sent and not acknowledged,
	// indexed by sequence number, from outStart (the oldest) to seqNr
	// (the next to send).
	seqNr, outStart uint16
	out             []*outPkt
	inflight        int // payload bytes in flight: sent, not acked, sacked or presumed lost
	resends         int // packets presumed lost, waiting to go again
	unsent          []byte
	unsentPos       int
	cwnd, ssthresh  int
	slowStart       bool
	cwndFull        bool // the last send stopped at cwnd, so an ACK may grow it
	peerWnd         int
	rtt, rttVar     time.Duration
	rto, rtoAt      time.Duration // rtoAt 0: no timer
	timeouts        int
	dupAcks         int
	lastAck         uint16
	lossSeq         uint16 // losses of packets before it belong to the last cut
	lossSet         bool
	delays          delayHistory

	// Receive side: rbuf[rpos:] is in order and not consumed; ooo holds
	// payloads past a gap, by sequence number.
	ackNr      uint16
	rbuf       []byte
	rpos       int
	ooo        map[uint16][]byte
	oooBytes   int
	replyMicro uint32
	finSeq     uint16
	gotFin     bool
	eof        bool // everything up to the peer's FIN arrived
	needAck    bool
	lastWnd    int // the window we last advertised
	// synRecv: accepted, and nothing but the SYN came yet. Data waits:
	// a dialer takes the sequence number of the first packet it gets as
	// our first, so none may overtake the ST_STATE that answers its SYN.
	synRecv bool

	lastSend, lastRecv, lingerUntil time.Duration
	isDirty, isBusy, wantWake       bool
	readable                        bool
}

// RemoteAddr is the peer's address. Any goroutine.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.addr }

// Buffered is the number of bytes received in order and not consumed.
func (c *Conn) Buffered() int { return len(c.rbuf) - c.rpos }

// Peek returns the first n of them without consuming them, nil while fewer
// arrived; valid until the next Discard.
func (c *Conn) Peek(n int) []byte {
	if n < 0 || n > len(c.rbuf)-c.rpos {
		return nil
	}
	return c.rbuf[c.rpos : c.rpos+n : c.rpos+n]
}

// Discard consumes n bytes. Reopening a window that had closed to under
// half is announced at once: the sender may be waiting on it.
func (c *Conn) Discard(n int) {
	c.rpos += min(max(n, 0), len(c.rbuf)-c.rpos)
	if c.rpos == len(c.rbuf) {
		c.rbuf, c.rpos = c.rbuf[:0], 0
	}
	half := c.e.cfg.RecvWindow / 2
	if c.lastWnd < half && c.window() >= half && c.state == stateConnected {
		c.needAck = true
		c.markDirty()
	}
}

// Write queues bufs, copying them, and sends what the windows allow.
func (c *Conn) Write(bufs [][]byte) error {
	if c.state != stateConnected || c.reported {
		return ErrClosed
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if c.unsentPos > 0 && len(c.unsent)+n > cap(c.unsent) {
		k := copy(c.unsent, c.unsent[c.unsentPos:])
		c.unsent, c.unsentPos = c.unsent[:k], 0
	}
	for _, b := range bufs {
		c.unsent = append(c.unsent, b...)
	}
	c.trySend()
	return nil
}

// Unsent is what Write took and no packet carries yet.
func (c *Conn) Unsent() int { return len(c.unsent) - c.unsentPos }

// Wake asks for another Readable in the next round, after the other
// connections' datagrams.
func (c *Conn) Wake() {
	if !c.wantWake {
		c.wantWake = true
		c.e.wakes = append(c.e.wakes, c)
	}
}

// Do runs fn on the loop, with ErrClosed if the connection was closed by
// then; an error means it never will.
func (c *Conn) Do(fn func(err error)) error {
	if c.dead.Load() {
		return ErrClosed
	}
	return c.e.post(func() {
		if c.dead.Load() {
			fn(ErrClosed)
		} else {
			fn(nil)
		}
	})
}

// Close closes the connection: the handler's Closed(nil) runs on the loop,
// then a FIN goes out. Any goroutine; idempotent.
func (c *Conn) Close() {
	if !c.dead.Load() {
		c.e.post(c.closeLocal)
	}
}

// RemoteNetAddr is RemoteAddr as a net.Addr. Any goroutine.
func (c *Conn) RemoteNetAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

func (c *Conn) closeLocal() {
	if c.state == stateGone || c.state == stateClosing {
		return
	}
	c.report(nil)
	if c.state == stateSynSent || c.synRecv {
		// Nothing but a SYN came, perhaps from a spoofed address: a FIN
		// retransmitted there for the linger would multiply the flood.
		c.e.remove(c)
		return
	}
	c.startClosing()
}

// report tells the handler, once, that the connection is over for it.
func (c *Conn) report(err error) {
	if c.reported {
		return
	}
	c.reported = true
	c.dead.Store(true)
	c.h.Closed(c, err)
}

// fail ends the connection at once.
func (c *Conn) fail(err error) {
	c.report(err)
	c.e.remove(c)
}

// startClosing sends our FIN after whatever is in flight and lingers.
func (c *Conn) startClosing() {
	c.state = stateClosing
	c.unsent, c.unsentPos = nil, 0
	c.rbuf, c.rpos, c.ooo, c.oooBytes = nil, 0, nil, 0
	c.lingerUntil = c.e.now + linger
	c.transmit(c.queuePacket(stFin, nil))
}

func (c *Conn) release() {
	for i, p := range c.out {
		if p != nil {
			freePkt(p)
			c.out[i] = nil
		}
	}
	c.out, c.unsent, c.rbuf, c.ooo = nil, nil, nil, nil
	c.inflight, c.resends, c.oooBytes = 0, 0, 0
}

func (c *Conn) markDirty() {
	if !c.isDirty {
		c.isDirty = true
		c.e.dirty = append(c.e.dirty, c)
	}
}

func (c *Conn) busyOn() {
	if !c.isBusy {
		c.isBusy = true
		c.e.busy = append(c.e.busy, c)
	}
}

func (c *Conn) hasTimers() bool {
	return c.rtoAt != 0 || c.state == stateClosing || c.Unsent() > 0
}

// finishRound: the handler reads what arrived, then what it and the ACKs
// allow goes out, then the ACK if no data packet carried it.
func (c *Conn) finishRound() {
	if c.state == stateConnected && !c.reported {
		if c.readable {
			c.readable = false
			c.h.Readable(c)
		}
		if c.eof && !c.reported && c.state == stateConnected {
			c.report(io.EOF)
		}
	}
	if c.state == stateConnected && c.reported {
		// The handler is gone (EOF, or Close ran inside a callback).
		c.startClosing()
	}
	if c.state == stateGone {
		return
	}
	c.trySend()
	if c.needAck && c.state != stateSynSent && c.state != stateGone {
		c.sendState()
	}
}
