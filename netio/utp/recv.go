package utp

import "time"

// The receive side: the packets of a connection, the acknowledgements they
// carry for our send side, the data and FIN they bring, and the ACK we
// answer with. Owned, like Conn, by the Mux loop.

// window is what we can take in beyond what we hold.
func (c *Conn) window() int {
	return max(c.e.cfg.RecvWindow-(len(c.rbuf)-c.rpos)-c.oooBytes, 0)
}

func (c *Conn) advertise() int {
	c.lastWnd = c.window()
	return c.lastWnd
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
