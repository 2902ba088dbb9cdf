package utp

import (
	"io"
	"net"
	"net/netip"
	"sync"
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

type outPkt struct {
	b         []byte // header and payload, as sent
	typ       uint8
	seq       uint16
	size      int // payload bytes
	sentAt    time.Duration
	transmits int
	sacked    bool
	resend    bool
}

// pktPool recycles the send side's packets: at 100 MB/s they are 70,000
// a second.
var pktPool = sync.Pool{New: func() any { return &outPkt{b: make([]byte, 0, headerLen+mss4)} }}

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

func freePkt(p *outPkt) {
	if cap(p.b) != headerLen+mss4 {
		return
	}
	*p = outPkt{b: p.b[:0]}
	pktPool.Put(p)
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

// window is what we can take in beyond what we hold.
func (c *Conn) window() int {
	return max(c.e.cfg.RecvWindow-(len(c.rbuf)-c.rpos)-c.oooBytes, 0)
}

// queuePacket makes the next packet in sequence and rings it.
func (c *Conn) queuePacket(typ uint8, payload []byte) *outPkt {
	p := pktPool.Get().(*outPkt)
	if len(payload) > cap(p.b)-headerLen {
		p.b = make([]byte, 0, headerLen+len(payload))
	}
	p.b = append(p.b[:headerLen], payload...)
	p.typ, p.seq, p.size = typ, c.seqNr, len(payload)
	n := int(uint16(c.seqNr-c.outStart)) + 1
	if n > len(c.out) {
		c.growOut(n)
	}
	c.out[int(c.seqNr)&(len(c.out)-1)] = p
	c.seqNr++
	return p
}

func (c *Conn) growOut(n int) {
	size := max(len(c.out), 16)
	for size < n {
		size *= 2
	}
	ring := make([]*outPkt, size)
	for s := c.outStart; s != c.seqNr; s++ {
		ring[int(s)&(size-1)] = c.out[int(s)&(len(c.out)-1)]
	}
	c.out = ring
}

// pkt is the ringed packet of sequence number s, nil if s is not in flight.
func (c *Conn) pkt(s uint16) *outPkt {
	if uint16(s-c.outStart) >= uint16(c.seqNr-c.outStart) {
		return nil
	}
	return c.out[int(s)&(len(c.out)-1)]
}

// transmit stamps p with the current acknowledgement state and sends it.
func (c *Conn) transmit(p *outPkt) {
	e := c.e
	id, ack := c.sendID, c.ackNr
	if p.typ == stSyn {
		id, ack = c.recvID, 0
	}
	putHeader(p.b, p.typ, false, id, e.micros(), c.replyMicro, uint32(c.advertise()), p.seq, ack)
	p.sentAt = e.now
	p.transmits++
	if p.transmits > 1 {
		e.stats.Resent++
	}
	e.out(p.b, c.addr)
	c.lastSend = e.now
	if c.rtoAt == 0 {
		c.rtoAt = e.now + c.rto
	}
	c.busyOn()
	if len(c.ooo) == 0 {
		c.needAck = false // the packet carried the ACK
	}
}

func (c *Conn) advertise() int {
	c.lastWnd = c.window()
	return c.lastWnd
}

// trySend sends the packets presumed lost, then new data, as far as the
// congestion window and the peer's receive window allow.
func (c *Conn) trySend() {
	if c.state != stateConnected && c.state != stateClosing {
		return
	}
	wnd := min(c.cwnd, c.peerWnd)
	for s := c.outStart; c.resends > 0 && s != c.seqNr; s++ {
		p := c.out[int(s)&(len(c.out)-1)]
		if p == nil || !p.resend {
			continue
		}
		if c.inflight > 0 && c.inflight+p.size > wnd {
			c.cwndFull = c.cwnd <= c.peerWnd
			return
		}
		p.resend = false
		c.resends--
		c.inflight += p.size
		c.transmit(p)
	}
	for c.state == stateConnected && !c.synRecv && c.Unsent() > 0 {
		if int(uint16(c.seqNr-c.outStart)) >= maxInflightPkts {
			return
		}
		n := min(c.Unsent(), c.mss)
		if c.inflight+n > wnd {
			if c.inflight > 0 || wnd <= 0 {
				c.cwndFull = c.cwnd <= c.peerWnd
				return
			}
			n = wnd // a window under one packet: a smaller packet
		}
		p := c.queuePacket(stData, c.unsent[c.unsentPos:c.unsentPos+n])
		c.unsentPos += n
		c.inflight += n
		c.transmit(p)
	}
	if c.Unsent() == 0 {
		c.unsent, c.unsentPos = c.unsent[:0], 0
		c.cwndFull = false
	}
}

// sendState sends an ACK, with a selective ACK of what arrived past a gap.
func (c *Conn) sendState() {
	e := c.e
	b := e.buf[:headerLen]
	var mask [maxSACK]byte
	n := 0
	if len(c.ooo) > 0 {
		for i := 0; i < maxSACK*8; i++ {
			if _, ok := c.ooo[c.ackNr+2+uint16(i)]; ok {
				mask[i/8] |= 1 << (i % 8)
				n = i/8 + 1
			}
		}
		n = (n + 3) &^ 3 // BEP 29: a multiple of 4 bytes
	}
	putHeader(b, stState, n > 0, c.sendID, e.micros(), c.replyMicro, uint32(c.advertise()), c.seqNr, c.ackNr)
	if n > 0 {
		b = append(b, 0, byte(n))
		b = append(b, mask[:n]...)
	}
	e.out(b, c.addr)
	c.lastSend = e.now
	c.needAck = false
}

// onPacket handles a packet of this connection (any but a SYN).
func (c *Conn) onPacket(h *header) {
	e := c.e
	if c.state == stateGone {
		return
	}
	if h.typ == stReset {
		c.fail(ErrReset)
		return
	}
	opened := false
	if c.state == stateSynSent {
		// Only an answer acknowledging our SYN establishes the
		// connection; its sequence number is that of the peer's first
		// data packet.
		if h.ack != c.seqNr-1 || (h.typ != stState && h.typ != stData) {
			return
		}
		c.state, c.ackNr, opened = stateConnected, h.seq-1, true
	}
	c.lastRecv = e.now
	c.synRecv = false
	c.replyMicro = e.micros() - h.ts
	c.peerWnd = int(h.wnd)
	c.onAck(h)
	if opened {
		c.timeouts = 0
		c.h.Opened(c)
		if c.state != stateConnected {
			return
		}
	}
	switch h.typ {
	case stData:
		c.onData(h)
	case stFin:
		c.onFin(h)
	}
	c.markDirty()
}

// onAck takes the acknowledgements any packet carries: the cumulative one,
// the selective ones, and from them RTT and delay samples, window growth
// and losses.
func (c *Conn) onAck(h *header) {
	e := c.e
	ack := h.ack
	if seqLess(ack, c.outStart-1) || !seqLess(ack, c.seqNr) {
		return // acknowledges nothing we have sent
	}
	acked, progressed := 0, false
	sample := time.Duration(-1)
	take := func(p *outPkt) {
		if p.resend {
			p.resend = false
			c.resends--
		} else {
			c.inflight -= p.size
		}
		acked += p.size
		progressed = true
		if p.transmits == 1 {
			sample = e.now - p.sentAt
		}
	}
	for c.outStart != ack+1 {
		i := int(c.outStart) & (len(c.out) - 1)
		if p := c.out[i]; p != nil {
			if !p.sacked {
				take(p)
			}
			c.out[i] = nil
			freePkt(p)
		}
		progressed = true
		c.outStart++
	}
	var newest time.Duration // the latest send among the sacked packets
	highest, sacked := uint16(0), false
	for i, m := range h.sack {
		for bit := 0; m != 0 && bit < 8; bit++ {
			if m&(1<<bit) == 0 {
				continue
			}
			s := ack + 2 + uint16(i*8+bit)
			p := c.pkt(s)
			if p == nil {
				continue
			}
			highest, sacked = s, true
			if !p.sacked {
				p.sacked = true
				take(p)
			}
			newest = max(newest, p.sentAt)
		}
	}
	if progressed {
		c.timeouts, c.dupAcks = 0, 0
		if sample >= 0 {
			c.updateRTT(sample)
		}
		if h.tsDiff != 0 && acked > 0 {
			c.updateCwnd(acked, h.tsDiff)
		}
	} else if ack == c.lastAck && c.outStart != c.seqNr && h.typ == stState {
		if c.dupAcks++; c.dupAcks == dupAckLimit {
			c.lost(c.outStart)
		}
	}
	c.lastAck = ack
	if sacked {
		// A packet with three or more selectively acknowledged ones
		// after it, sent before the newest of them, is lost; one resent
		// since is not, until packets sent after its resend arrive.
		n := 0
		for s := highest; s != c.outStart-1; s-- {
			p := c.out[int(s)&(len(c.out)-1)]
			switch {
			case p == nil:
			case p.sacked:
				n++
			case n >= dupAckLimit && p.sentAt < newest:
				c.lost(s)
			}
		}
	}
	if c.inflight > 0 || c.resends > 0 {
		if progressed {
			c.rtoAt = e.now + c.rto
		}
	} else {
		c.rtoAt = 0
	}
	if c.state == stateClosing && c.outStart == c.seqNr {
		e.remove(c) // our FIN is acknowledged
	}
}

// lost marks the packet s for resending and, once per window, halves cwnd.
func (c *Conn) lost(s uint16) {
	p := c.pkt(s)
	if p == nil || p.sacked || p.resend || p.transmits == 0 {
		return
	}
	p.resend = true
	c.resends++
	c.inflight -= p.size
	if !c.lossSet || !seqLess(s, c.lossSeq) {
		c.cwnd = max(c.cwnd/2, 2*c.mss)
		c.ssthresh = c.cwnd
		c.slowStart = false
		c.lossSeq, c.lossSet = c.seqNr, true
	}
	c.markDirty()
}

// onData takes a data packet: in order into rbuf (with whatever it lets
// follow from ooo), past a gap into ooo, within the receive window.
func (c *Conn) onData(h *header) {
	c.needAck = true
	s := h.seq
	if !seqLess(c.ackNr, s) || (c.gotFin && !seqLess(s, c.finSeq)) {
		return // a duplicate, or past the end: the ACK tells the sender
	}
	dist := uint16(s - c.ackNr)
	if dist > maxInflightPkts+24 {
		c.e.stats.WindowDrops++
		return
	}
	if c.state == stateClosing {
		if dist == 1 {
			c.ackNr = s
		}
		return
	}
	if len(h.payload) > c.window() {
		c.e.stats.WindowDrops++
		return
	}
	if dist != 1 {
		if _, ok := c.ooo[s]; !ok {
			if c.ooo == nil {
				c.ooo = map[uint16][]byte{}
			}
			c.ooo[s] = append([]byte(nil), h.payload...)
			c.oooBytes += len(h.payload)
		}
		return
	}
	c.appendRecv(h.payload)
	c.ackNr = s
	for len(c.ooo) > 0 {
		b, ok := c.ooo[c.ackNr+1]
		if !ok {
			break
		}
		delete(c.ooo, c.ackNr+1)
		c.oooBytes -= len(b)
		c.appendRecv(b)
		c.ackNr++
	}
	if len(c.ooo) == 0 {
		c.ooo = nil
	}
	if c.gotFin && c.ackNr+1 == c.finSeq {
		c.ackNr, c.eof = c.finSeq, true
	}
	c.readable = true
}

func (c *Conn) appendRecv(p []byte) {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 0, max(len(p), 64<<10))
	} else if c.rpos > 0 && len(c.rbuf)+len(p) > cap(c.rbuf) {
		k := copy(c.rbuf, c.rbuf[c.rpos:])
		c.rbuf, c.rpos = c.rbuf[:k], 0
	}
	c.rbuf = append(c.rbuf, p...)
}

func (c *Conn) onFin(h *header) {
	c.needAck = true
	if c.gotFin {
		return
	}
	c.gotFin, c.finSeq = true, h.seq
	if c.ackNr+1 == h.seq {
		c.ackNr = h.seq
		c.eof = true
	}
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
