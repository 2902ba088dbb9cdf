package engine

import "time"

// bucket is a token bucket in bytes. Transfers take tokens as they happen
// and may drive the balance negative; the session stops requesting (or
// reading for upload) while it is negative, and the tick refills it. A burst
// of at most one second's worth keeps the average within the limit.
type bucket struct {
	rate   int64 // bytes per second; 0 = unlimited
	tokens int64
	last   time.Time
}

func (b *bucket) take(n int64) {
	if b.rate > 0 {
		b.tokens -= n
	}
}

func (b *bucket) blocked() bool { return b.rate > 0 && b.tokens <= 0 }

func (b *bucket) refill(now time.Time) {
	if b.rate == 0 {
		b.last = now
		return
	}
	if !b.last.IsZero() {
		b.tokens += int64(float64(b.rate) * now.Sub(b.last).Seconds())
	}
	// Up to two seconds' worth may be saved: a peer whose requests arrive
	// in bursts then still gets the full rate on average, and no burst can
	// exceed the limit by more than a second's worth.
	b.tokens = min(b.tokens, 2*b.rate)
	b.last = now
}

func (b *bucket) set(rate int64) {
	b.rate = max(rate, 0)
	b.tokens = min(b.tokens, b.rate)
}

// rateLimits are a session's own limits; the client's global ones apply on
// top (see Client.globalBlocked).
type rateLimits struct {
	down, up bucket
}

func (l *rateLimits) refill(now time.Time) {
	l.down.refill(now)
	l.up.refill(now)
}

func (l *rateLimits) downBlocked(s *Session) bool {
	return l.down.blocked() || s.c.down.blocked()
}

func (l *rateLimits) upBlocked(s *Session) bool {
	return l.up.blocked() || s.c.up.blocked()
}

// downAllowance is how many bytes may still be requested now, and whether
// any download limit applies at all.
func (l *rateLimits) downAllowance(s *Session) (int64, bool) {
	allowed, limited := int64(1<<62), false
	if l.down.rate > 0 {
		allowed, limited = l.down.tokens, true
	}
	if s.c.down.rate.Load() > 0 {
		allowed, limited = min(allowed, s.c.down.tokens.Load()), true
	}
	return allowed, limited
}
