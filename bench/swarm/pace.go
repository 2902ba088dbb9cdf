package swarm

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine/wire"
)

// Pacing (Config.RateCap, Config.RTT) gives each connection queues of
// timed work: requests to send later, blocks to count later, answers to
// send later. No connection has a timer of its own: each event loop has
// one pacer holding its paced connections and when each is next due, and
// one swarm goroutine asks every loop every pacerTick to run the due ones
// (gnet's EventLoop.Execute), so 2,000 capped connections cost two small
// tasks per tick, not 2,000 timers.

// pacerTick is the pacing period. Work due within half a tick is done at
// the tick, so delays are kept to +-pacerTick/2 around their mean.
const pacerTick = 5 * time.Millisecond

// maxQueuedAnswers bounds the requests a paced seeder holds for one
// connection; a peer that queues more is closed as broken (libtorrent's
// default allows 2,000 and then drops; no real client gets near this).
const maxQueuedAnswers = 8192

// noDue marks a connection with nothing timed to do.
const noDue = time.Duration(math.MaxInt64)

// clock is the swarm's time: since Start, monotonic.
func (s *Swarm) clock() time.Duration { return time.Since(s.start) }

// pacer holds one event loop's paced connections. conns and due belong to
// that loop; queued is the only field other goroutines touch.
type pacer struct {
	sw     *Swarm
	el     gnet.EventLoop
	conns  []*conn
	due    []time.Duration // due[i]: when conns[i] next has work, or noDue
	queued atomic.Bool     // a Run is waiting in the loop's task queue
}

// pacerFor returns the pacer of c's event loop, making it on first use.
// On c's loop.
func (s *Swarm) pacerFor(c *conn) *pacer {
	el := c.gc.EventLoop()
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, p := range s.pacers {
		if p.el == el {
			return p
		}
	}
	p := &pacer{sw: s, el: el}
	s.pacers = append(s.pacers, p)
	return p
}

// add and remove run on the pacer's loop.
func (p *pacer) add(c *conn) {
	c.pidx = len(p.conns)
	p.conns = append(p.conns, c)
	p.due = append(p.due, noDue)
}

func (p *pacer) remove(c *conn) {
	i, last := c.pidx, len(p.conns)-1
	if i < 0 || i > last || p.conns[i] != c {
		return
	}
	p.conns[i], p.due[i] = p.conns[last], p.due[last]
	p.conns[i].pidx = i
	p.conns[last] = nil
	p.conns, p.due = p.conns[:last], p.due[:last]
	c.pidx = -1
}

// Run is one tick on the loop: every connection due by now (within half a
// tick) does its timed work and writes what it produced.
func (p *pacer) Run(context.Context) error {
	p.queued.Store(false)
	now := p.sw.clock()
	soon := now + pacerTick/2
	// Backwards: a write error closes its connection at once, and closing
	// moves the last connection into its place, which has been visited.
	for i := len(p.conns) - 1; i >= 0; i-- {
		if i >= len(p.conns) || p.due[i] > soon {
			continue
		}
		c := p.conns[i]
		c.pace(now)
		c.flush()
	}
	return nil
}

// pace asks every loop's pacer to run, every pacerTick, until the swarm
// stops. A loop still busy with the previous tick's task is skipped.
func (s *Swarm) pace() {
	defer s.workers.Done()
	tick := time.NewTicker(pacerTick)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.pmu.Lock()
		ps := s.pacers
		s.pmu.Unlock()
		for _, p := range ps {
			if p.queued.CompareAndSwap(false, true) {
				if err := p.el.Execute(s.ctx, p); err != nil {
					p.queued.Store(false)
				}
			}
		}
	}
}

// pace does c's timed work due by now and records when it is next due.
// On c's loop.
func (c *conn) pace(now time.Duration) {
	next := noDue
	switch {
	case c.lch != nil:
		next = c.lch.pace(now)
	case c.ans != nil:
		next = c.ans.pace(c, now)
	}
	if c.pc != nil && c.pidx >= 0 {
		c.pc.due[c.pidx] = next
	}
}

// bucket is a token bucket of bytes. It starts full; a take larger than
// the burst waits for a full bucket and leaves it in debt, so any size
// passes at the long-run rate.
type bucket struct {
	rate, burst, tokens float64 // bytes/s; rate 0: unlimited
	last                time.Duration
}

// newBucket allows 50 ms of rate at once, at least one block.
func newBucket(rate int64, block int, now time.Duration) bucket {
	b := bucket{rate: float64(rate), burst: max(float64(block), float64(rate)/20), last: now}
	b.tokens = b.burst
	return b
}

func (b *bucket) refill(now time.Duration) {
	if b.rate > 0 && now > b.last {
		b.tokens = min(b.burst, b.tokens+b.rate*(now-b.last).Seconds())
	}
	b.last = now
}

// take spends n bytes if they may go now.
func (b *bucket) take(n uint32) bool {
	if b.rate == 0 {
		return true
	}
	if b.tokens < min(float64(n), b.burst) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// ready is when n bytes may go, given the last refill at now.
func (b *bucket) ready(n uint32, now time.Duration) time.Duration {
	need := min(float64(n), b.burst) - b.tokens
	if b.rate == 0 || need <= 0 {
		return now
	}
	return now + time.Duration(need/b.rate*float64(time.Second)) + 1
}

// timed is one block request waiting for its time: to be sent, counted or
// answered. length 0 marks one cancelled while waiting.
type timed struct {
	at     time.Duration
	key    uint64 // blockKey(index, begin)
	length uint32
}

// fifo is a queue of timed entries; every queue here is filled in time
// order (the delay is the same for all), so its head is always next.
type fifo struct {
	items []timed
	head  int
}

func (q *fifo) len() int     { return len(q.items) - q.head }
func (q *fifo) peek() timed  { return q.items[q.head] } // a copy: pop may move the items
func (q *fifo) push(t timed) { q.items = append(q.items, t) }
func (q *fifo) clear()       { q.items, q.head = q.items[:0], 0 }
func (q *fifo) all() []timed { return q.items[q.head:] }
func (q *fifo) pop() (t timed) {
	t = q.items[q.head]
	q.head++
	if q.head == len(q.items) {
		q.clear()
	} else if q.head >= 64 && q.head*2 >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		q.items, q.head = q.items[:n], 0
	}
	return t
}

// answerer is a paced seeder's queue of requests to answer, owned by the
// connection's loop.
type answerer struct {
	q   fifo
	bkt bucket
}

// request queues an answer RTT from now.
func (a *answerer) request(c *conn, index, begin, length uint32) error {
	if a.q.len() >= maxQueuedAnswers {
		return fmt.Errorf("swarm: more than %d requests queued", maxQueuedAnswers)
	}
	a.q.push(timed{at: c.sw.clock() + c.sw.cfg.RTT, key: blockKey(index, begin), length: length})
	return nil
}

// cancel drops a queued request not yet answered.
func (a *answerer) cancel(index, begin, length uint32) {
	k := blockKey(index, begin)
	for i, t := range a.q.all() {
		if t.key == k && t.length == length {
			a.q.all()[i].length = 0
			return
		}
	}
}

// pace answers the requests that are due, as the cap allows, and returns
// when the next one is due.
func (a *answerer) pace(c *conn, now time.Duration) time.Duration {
	soon := now + pacerTick/2
	a.bkt.refill(now)
	for a.q.len() > 0 {
		t := a.q.peek()
		if t.length == 0 {
			a.q.pop()
			continue
		}
		if t.at > soon || !a.bkt.take(t.length) {
			return max(t.at, a.bkt.ready(t.length, now))
		}
		a.q.pop()
		c.serve(uint32(t.key>>32), uint32(t.key), t.length)
	}
	return noDue
}

// pace, for a leecher: counts the arrived blocks that are due, as the cap
// allows, asking for more as each counts; sends the requests that are due;
// returns when the next is due.
func (l *leecher) pace(now time.Duration) time.Duration {
	c := l.c
	soon := now + pacerTick/2
	l.bkt.refill(now)
	next := noDue
	for l.held.len() > 0 {
		t := l.held.peek()
		if t.at > soon || !l.bkt.take(t.length) {
			next = max(t.at, l.bkt.ready(t.length, now))
			break
		}
		l.held.pop()
		l.count(t.length)
		l.fill()
	}
	for l.sendq.len() > 0 {
		t := l.sendq.peek()
		if t.at > soon {
			next = min(next, t.at)
			break
		}
		l.sendq.pop()
		c.out = wire.AppendRequest(c.out, uint32(t.key>>32), uint32(t.key), t.length)
	}
	return next
}
