package utp

import (
	"sync"
	"time"
)

// The send side: the ring of packets in flight, what goes out of the
// unsent queue as the windows allow, and the packets presumed lost. Owned,
// like Conn, by the Mux loop.

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

func freePkt(p *outPkt) {
	if cap(p.b) != headerLen+mss4 {
		return
	}
	*p = outPkt{b: p.b[:0]}
	pktPool.Put(p)
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
