package utp

import "time"

// LEDBAT (BEP 29): the round-trip estimate, the congestion window and
// the base-delay history it is judged against. Owned, like Conn, by the
// Mux loop.

func (c *Conn) updateRTT(sample time.Duration) {
	if c.rtt == 0 {
		c.rtt, c.rttVar = sample, sample/2
	} else {
		d := c.rtt - sample
		if d < 0 {
			d = -d
		}
		c.rttVar += (d - c.rttVar) / 4
		c.rtt += (sample - c.rtt) / 8
	}
	c.rto = min(max(c.rtt+4*c.rttVar, minRTO), maxRTO)
}

// updateCwnd is LEDBAT: the window grows while our packets' one-way delay
// over its minimum (queueing somewhere on the path) is under target, and
// shrinks above it. Slow start doubles it per round trip until a loss or
// half the target's delay. A window the sender does not fill stays as it
// is.
func (c *Conn) updateCwnd(acked int, tsDiff uint32) {
	c.delays.add(tsDiff, c.e.now)
	qd := time.Duration(max(int32(tsDiff-c.delays.base()), 0)) * time.Microsecond
	if c.rtt > 0 && qd > c.rtt {
		qd = c.rtt // a one-way delay over the round trip is clock skew
	}
	if !c.cwndFull {
		return
	}
	if c.slowStart {
		if qd < target/2 && c.cwnd < c.ssthresh {
			c.cwnd = min(c.cwnd+acked, maxCwnd)
			return
		}
		c.slowStart = false
	}
	off := float64(target-qd) / float64(target)
	gain := gainPerRTT * off * float64(acked) / float64(c.cwnd)
	c.cwnd = min(max(c.cwnd+int(gain), 2*c.mss), maxCwnd)
}

// delayHistory keeps the minimum of the delay samples per minute for the
// last two minutes and this one: the base delay, the path's delay without
// queueing (plus the clocks' offset, which cancels out).
type delayHistory struct {
	cur      uint32
	curStart time.Duration
	prev     [2]uint32
	nprev    int
	init     bool
}

func (d *delayHistory) add(v uint32, now time.Duration) {
	switch {
	case !d.init:
		d.cur, d.curStart, d.init = v, now, true
	case now-d.curStart >= time.Minute:
		d.prev[1], d.prev[0] = d.prev[0], d.cur
		d.nprev = min(d.nprev+1, 2)
		d.cur, d.curStart = v, now
	case int32(v-d.cur) < 0:
		d.cur = v
	}
}

func (d *delayHistory) base() uint32 {
	b := d.cur
	for _, p := range d.prev[:d.nprev] {
		if int32(p-b) < 0 {
			b = p
		}
	}
	return b
}
