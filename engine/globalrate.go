package engine

import (
	"sync/atomic"
	"time"
)

// globalBucket is a token bucket shared by all sessions, so its state is
// atomic; the client's ticker refills it. It also counts every byte taken,
// limited or not, so the client knows how busy its peers keep it.
type globalBucket struct {
	rate   atomic.Int64
	tokens atomic.Int64
	last   atomic.Int64 // unix nanoseconds of the last refill

	moved     atomic.Int64 // bytes taken since the start
	lastMoved int64        // moved at the last refill; ticker only
	perSecond atomic.Int64 // bytes taken per second over the last refill period
}

func (b *globalBucket) set(rate int64) { b.rate.Store(max(rate, 0)) }

func (b *globalBucket) take(n int64) {
	b.moved.Add(n)
	if b.rate.Load() > 0 {
		b.tokens.Add(-n)
	}
}

func (b *globalBucket) blocked() bool { return b.rate.Load() > 0 && b.tokens.Load() <= 0 }

func (b *globalBucket) refill(now time.Time) {
	last := b.last.Swap(now.UnixNano())
	moved := b.moved.Load()
	if last != 0 && now.UnixNano() > last {
		b.perSecond.Store(int64(float64(moved-b.lastMoved) * 1e9 / float64(now.UnixNano()-last)))
	}
	b.lastMoved = moved
	rate := b.rate.Load()
	if rate == 0 || last == 0 {
		return
	}
	add := int64(float64(rate) * float64(now.UnixNano()-last) / 1e9)
	t := b.tokens.Add(add)
	if t > rate {
		b.tokens.Store(rate)
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
