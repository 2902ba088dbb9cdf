package swarm

import (
	"math"
	"sync"
	"time"
)

// maxClosed bounds the closed connections kept for Conns: at 40 closes a
// second, 27 minutes of them.
const maxClosed = 1 << 16

// ConnSample is one connection past its handshake at a snapshot.
type ConnSample struct {
	ID      uint64 // unique in the swarm: a churned slot's next connection has another
	Torrent int    // index in Config.Torrents
	// Start (handshake) and End (close) are on the swarm's clock (since
	// Start); End is meaningless while Open.
	Start, End time.Duration
	Open       bool
	Bytes      int64 // payload counted (Leech) or sent (Seed) over its life
}

// ConnSnapshot is every connection open at At, and those closed since the
// time it was asked for.
type ConnSnapshot struct {
	At    time.Duration // the swarm's clock
	Conns []ConnSample
}

// registry is the connections past their handshake, for Conns. Its own
// mutex guards it; the byte counts are the connections' atomics.
type registry struct {
	mu     sync.Mutex
	live   map[*conn]struct{}
	closed []ConnSample // in closing order, at most maxClosed
}

// register runs on c's loop when its handshake completes; it also puts a
// paced connection under its loop's pacer.
func (s *Swarm) register(c *conn) {
	c.start = s.clock()
	s.cnt.firstHandshake.CompareAndSwap(0, int64(max(c.start, 1)))
	s.reg.mu.Lock()
	if s.reg.live == nil {
		s.reg.live = map[*conn]struct{}{}
	}
	s.reg.live[c] = struct{}{}
	s.reg.mu.Unlock()
	if s.cfg.paced() {
		c.pc = s.pacerFor(c)
		c.pc.add(c)
	}
}

// unregister runs on c's loop when it closes.
func (s *Swarm) unregister(c *conn) {
	if c.pc != nil {
		c.pc.remove(c)
	}
	cs := c.sample(s.clock(), false)
	s.reg.mu.Lock()
	delete(s.reg.live, c)
	if len(s.reg.closed) >= maxClosed {
		s.reg.closed = append(s.reg.closed[:0], s.reg.closed[maxClosed/2:]...)
	}
	s.reg.closed = append(s.reg.closed, cs)
	s.reg.mu.Unlock()
}

func (c *conn) sample(at time.Duration, open bool) ConnSample {
	return ConnSample{ID: c.id, Torrent: c.t.idx, Start: c.start, End: at, Open: open, Bytes: c.moved.Load()}
}

// Conns snapshots the connections past their handshake: those open now
// and those that closed at or after since (on the swarm's clock). To
// measure a window, take from := Conns(Elapsed()) at its start and
// to := Conns(from.At) at its end, and compare them with Shares. Any
// goroutine.
func (s *Swarm) Conns(since time.Duration) ConnSnapshot {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	snap := ConnSnapshot{At: s.clock()}
	snap.Conns = make([]ConnSample, 0, len(s.reg.live))
	for c := range s.reg.live {
		snap.Conns = append(snap.Conns, c.sample(0, true))
	}
	for i := len(s.reg.closed) - 1; i >= 0 && s.reg.closed[i].End >= since; i-- {
		snap.Conns = append(snap.Conns, s.reg.closed[i])
	}
	return snap
}

// ConnShare is one connection's part of a window.
type ConnShare struct {
	ID      uint64
	Torrent int
	Bytes   int64   // payload moved in the window
	Seconds float64 // time it was open in the window
}

// Shares is what each connection moved between two snapshots, and for how
// long it was open in between; to must be Conns(from.At). Connections open
// for no time in the window are left out.
func Shares(from, to ConnSnapshot) []ConnShare {
	before := make(map[uint64]int64, len(from.Conns))
	for _, c := range from.Conns {
		before[c.ID] = c.Bytes
	}
	out := make([]ConnShare, 0, len(to.Conns))
	for _, c := range to.Conns {
		end := to.At
		if !c.Open {
			end = min(end, c.End)
		}
		secs := (end - max(c.Start, from.At)).Seconds()
		if secs <= 0 {
			continue
		}
		out = append(out, ConnShare{ID: c.ID, Torrent: c.Torrent, Bytes: c.Bytes - before[c.ID], Seconds: secs})
	}
	return out
}

// Jain is Jain's fairness index of xs, (sum x)^2 / (n sum x^2): 1 when all
// are equal, 1/n when one has everything. NaN when xs is empty or all
// zero.
func Jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	if len(xs) == 0 || sq == 0 {
		return math.NaN()
	}
	return sum * sum / (float64(len(xs)) * sq)
}
