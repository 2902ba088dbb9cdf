package engine

import (
	"math/rand/v2"
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

	// epoch counts refills; quota is what one session may take per epoch
	// (0: no quota), so that sessions already busy when a refill lands do
	// not take all of it before the ones it wakes run. Set by the ticker.
	epoch atomic.Uint64
	quota atomic.Int64
}

// share is one session's use of a global limit in the current epoch.
// Session-owned.
type share struct {
	epoch uint64
	taken int64 // may start negative: credit carried from the last epoch
	quota int64 // the quota of epoch
}

// over reports whether another block would take the session past its
// quota of b this epoch. Stopping only once over it let each of 200
// torrents take four blocks of a 52 KiB quota: 12.8 MiB of a 10 MiB
// refill, and the last sessions to run found it spent every time. What a
// session left of its last epoch's quota (at most a block) carries over,
// and so does what it took past it, so that over many refills it takes
// its quota exactly: without the carry, three blocks of a 52 KiB quota
// left 4 KiB of each refill unused, 6 % of the limit.
func (sh *share) over(b *globalBucket) bool {
	if e := b.epoch.Load(); sh.epoch != e {
		carry := int64(0)
		if sh.epoch+1 == e && sh.quota > 0 {
			carry = max(sh.taken-sh.quota, -blockSize)
		}
		sh.epoch, sh.taken, sh.quota = e, carry, b.quota.Load()
	}
	q := sh.quota
	return q > 0 && sh.taken+blockSize > q
}

// take counts n against the session's quota and takes it from b.
func (sh *share) take(b *globalBucket, n int64) {
	sh.taken += n
	b.take(n)
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
	var woken []*Session
	c.sessions.Range(func(_, v any) bool {
		if s := v.(*Session); s.limitWake.CompareAndSwap(true, false) {
			woken = append(woken, s)
		}
		return true
	})
	// Each session held back may take an equal part of this refill.
	for _, b := range []*globalBucket{&c.down, &c.up} {
		if r := b.rate.Load(); r > 0 {
			part := int64(float64(r) * limitRefillEvery.Seconds())
			b.quota.Store(max(part/int64(max(len(woken), 1)), blockSize))
		} else {
			b.quota.Store(0)
		}
		b.epoch.Add(1)
	}
	// sync.Map ranges in hash order, the same every time: unshuffled,
	// the same sessions would always run first.
	rand.Shuffle(len(woken), func(i, j int) { woken[i], woken[j] = woken[j], woken[i] })
	for _, s := range woken {
		s.post(evFunc(func(*Session) {})) // afterBatch serves and requests
	}
}

// PayloadRates are the bytes per second of block data requested from peers
// (down) and read from disk for them (up), over all torrents during the last
// tick. They count work as it is scheduled, so they lead the snapshots'
// rates by a round trip; the API uses them to tell a busy daemon from an
// idle one. Safe for concurrent use.
func (c *Client) PayloadRates() (down, up int64) {
	return c.down.perSecond.Load(), c.up.perSecond.Load()
}
