// Package ratelimit is the one token bucket the daemon limits with: a
// torrent's and the client's transfer limits, the API's pacing and the
// DHT's per-source query limit all count with it. A Bucket is plain data,
// not safe for concurrent use: its owner (a session, or a mutex around it)
// serialises access.
package ratelimit

import "time"

// Bucket accrues Rate tokens a second, saving at most Burst. Take may drive
// the balance negative: work already done is paid for afterwards, and an
// owner that checks Blocked before starting more keeps the average at
// Rate. A Rate of zero or less means unlimited.
type Bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// New is a bucket of rate a second saving burst, starting full.
func New(rate, burst float64) Bucket {
	return Bucket{rate: rate, burst: burst, tokens: burst}
}

// Limited reports whether a rate is set.
func (b *Bucket) Limited() bool { return b.rate > 0 }

// Rate is the tokens accrued per second, 0 when unlimited.
func (b *Bucket) Rate() float64 { return max(b.rate, 0) }

// Tokens is the balance, negative while paying off.
func (b *Bucket) Tokens() float64 { return b.tokens }

// Set changes the rate and burst; a balance above one second's worth of
// the new rate is cut to it, so lowering a limit takes effect at once.
func (b *Bucket) Set(rate, burst float64) {
	b.rate, b.burst = max(rate, 0), burst
	b.tokens = min(b.tokens, b.rate)
}

// Refill accrues the tokens earned since the last Refill (none on the
// first), up to the burst.
func (b *Bucket) Refill(now time.Time) {
	if b.rate > 0 && !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+b.rate*now.Sub(b.last).Seconds())
	}
	b.last = now
}

// Take spends n tokens when limited.
func (b *Bucket) Take(n float64) {
	if b.rate > 0 {
		b.tokens -= n
	}
}

// Blocked reports a limited bucket with nothing left.
func (b *Bucket) Blocked() bool { return b.rate > 0 && b.tokens <= 0 }

// Allow refills and spends n if the balance covers it.
func (b *Bucket) Allow(now time.Time, n float64) bool {
	if b.rate <= 0 {
		return true
	}
	b.Refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Wait is how long until a balance of -need is paid off at the rate.
func (b *Bucket) Wait(need float64) time.Duration {
	if b.rate <= 0 || need <= 0 {
		return 0
	}
	return time.Duration(need / b.rate * float64(time.Second))
}
