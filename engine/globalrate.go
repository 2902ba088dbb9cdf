package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/engine/ratelimit"
)

// globalBucket is a limit shared by all sessions: a ratelimit.Bucket behind
// a mutex, with the rate also kept atomically so that the common case, no
// limit, costs every check one atomic load. The client's ticker refills it.
// It also counts every byte taken, limited or not, so the client knows how
// busy its peers keep it. Safe for concurrent use.
type globalBucket struct {
	rate atomic.Int64 // bytes/s; 0 = unlimited
	mu   sync.Mutex
	b    ratelimit.Bucket

	moved     atomic.Int64 // bytes taken since the start
	last      time.Time    // ticker only
	lastMoved int64        // moved at the last refill; ticker only
	perSecond atomic.Int64 // bytes taken per second over the last refill period
	hit       atomic.Bool  // the limit held a transfer back since the ticker last looked
}

// set changes the rate; one second's worth may be saved.
func (b *globalBucket) set(rate int64) {
	rate = max(rate, 0)
	b.mu.Lock()
	b.b.Set(float64(rate), float64(rate))
	b.mu.Unlock()
	b.rate.Store(rate)
}

func (b *globalBucket) take(n int64) {
	b.moved.Add(n)
	if b.rate.Load() == 0 {
		return
	}
	b.mu.Lock()
	b.b.Take(float64(n))
	b.mu.Unlock()
}

func (b *globalBucket) blocked() bool {
	if b.rate.Load() == 0 {
		return false
	}
	b.mu.Lock()
	blocked := b.b.Blocked()
	b.mu.Unlock()
	if blocked {
		b.hit.Store(true)
	}
	return blocked
}

// tokens is the balance, and whether a limit is set.
func (b *globalBucket) tokens() (int64, bool) {
	if b.rate.Load() == 0 {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return int64(b.b.Tokens()), true
}

// refill adds the tokens earned since the last refill and, at the ticker's
// one-second refills (measure), updates perSecond.
func (b *globalBucket) refill(now time.Time, measure bool) {
	if measure {
		moved := b.moved.Load()
		if !b.last.IsZero() && now.After(b.last) {
			b.perSecond.Store(int64(float64(moved-b.lastMoved) / now.Sub(b.last).Seconds()))
		}
		b.last, b.lastMoved = now, moved
	}
	b.mu.Lock()
	b.b.Refill(now)
	b.mu.Unlock()
}

// limitRefillEvery is how often global limits refill between ticks, and
// the sessions they held back are woken: ten small shares a second, handed
// out in a new order each time, rather than one large one that the first
// sessions to run would take.
const limitRefillEvery = 100 * time.Millisecond

// limitRefill refills the global limits and wakes the sessions they held
// back. Ticker only.
func (c *Client) limitRefill(now time.Time) {
	if c.up.rate.Load() == 0 && c.down.rate.Load() == 0 {
		return
	}
	c.down.refill(now, false)
	c.up.refill(now, false)
	c.sessions.Range(func(_, v any) bool {
		if s := v.(*Session); s.limitWake.CompareAndSwap(true, false) {
			s.post(evFunc(func(*Session) {})) // afterBatch serves and requests
		}
		return true
	})
}

// PayloadRates are the bytes per second of block data requested from peers
// (down) and read from disk for them (up), over all torrents during the last
// tick. They count work as it is scheduled, so they lead the snapshots'
// rates by a round trip; the API uses them to tell a busy daemon from an
// idle one. Safe for concurrent use.
func (c *Client) PayloadRates() (down, up int64) {
	return c.down.perSecond.Load(), c.up.perSecond.Load()
}
