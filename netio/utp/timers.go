package utp

// A connection's timers, run by the Mux loop's one ticker: retransmission,
// the zero-window probe, the FIN's linger, and the sweep of what is done.

// tick runs the connection's timers: retransmission, zero-window probe,
// linger.
func (c *Conn) tick() {
	e := c.e
	if c.state == stateClosing && e.now >= c.lingerUntil {
		e.remove(c)
		return
	}
	if c.rtoAt != 0 && e.now >= c.rtoAt {
		c.onTimeout()
		return
	}
	if c.state == stateConnected && !c.synRecv && c.inflight == 0 && c.resends == 0 && c.Unsent() > 0 &&
		c.peerWnd < min(c.Unsent(), c.mss) && e.now-c.lastSend >= c.rto {
		// The peer's window is shut: one packet past it asks again.
		n := min(c.Unsent(), c.mss)
		p := c.queuePacket(stData, c.unsent[c.unsentPos:c.unsentPos+n])
		c.unsentPos += n
		c.inflight += n
		c.transmit(p)
	}
}

func (c *Conn) onTimeout() {
	e := c.e
	c.timeouts++
	if (c.state == stateSynSent && c.timeouts >= e.cfg.SynTimeouts) || c.timeouts > maxTimeouts {
		c.fail(ErrTimeout)
		return
	}
	c.rto = min(c.rto*2, maxRTO)
	c.rtoAt = e.now + c.rto
	// Everything unacknowledged is presumed lost: from the oldest, with a
	// window of one packet, slow start again.
	for s := c.outStart; s != c.seqNr; s++ {
		if p := c.out[int(s)&(len(c.out)-1)]; p != nil && !p.sacked && !p.resend {
			p.resend = true
			c.resends++
			c.inflight -= p.size
		}
	}
	c.ssthresh = max(c.cwnd/2, 2*c.mss)
	c.cwnd, c.slowStart = c.mss, true
	c.lossSeq, c.lossSet = c.seqNr, true
	if c.state == stateSynSent {
		p := c.pkt(c.outStart)
		if p != nil {
			p.resend = false
			c.resends--
			c.transmit(p)
		}
		return
	}
	c.trySend()
}

// sweep runs once a second: keep-alives, and the buffers of an idle
// connection go back to the heap.
func (c *Conn) sweep() {
	e := c.e
	if c.state == stateClosing && e.now >= c.lingerUntil {
		e.remove(c)
		return
	}
	if c.state != stateConnected {
		return
	}
	if e.now-c.lastSend >= keepAlive {
		c.needAck = true
		c.markDirty()
	}
	if len(c.rbuf) == 0 && c.rbuf != nil && e.now-c.lastRecv >= sweepEvery {
		c.rbuf, c.rpos = nil, 0
	}
	if c.Unsent() == 0 && c.unsent != nil {
		c.unsent, c.unsentPos = nil, 0
	}
	if c.outStart == c.seqNr && len(c.out) > 16 {
		c.out = nil
	}
}
