package engine

import (
	"time"

	"gotorrentserver/engine/ratelimit"
)

// bucket is one direction of a torrent's own limit, in bytes. Transfers
// take tokens as they are scheduled (a request sent, a read queued) and may
// drive the balance negative; the session schedules nothing more in that
// direction while the balance is zero or less, and the tick refills it.
// Up to two seconds' worth may be saved, so a peer whose requests arrive in
// bursts still gets the full rate on average. Session-owned.
type bucket struct{ ratelimit.Bucket }

func (b *bucket) take(n int64)          { b.Take(float64(n)) }
func (b *bucket) blocked() bool         { return b.Blocked() }
func (b *bucket) refill(now time.Time)  { b.Refill(now) }
func (b *bucket) set(rate int64)        { b.Set(float64(rate), 2*float64(rate)) }
func (b *bucket) tokens() (int64, bool) { return int64(b.Tokens()), b.Limited() }

// rateLimits are a session's own limits; the client's global ones apply on
// top (see downBlocked).
type rateLimits struct {
	down, up bucket
	// gdown, gup: this session's use of the global limits' quota.
	gdown, gup share
}

func (l *rateLimits) refill(now time.Time) {
	l.down.refill(now)
	l.up.refill(now)
}

func (l *rateLimits) downBlocked(s *Session) bool {
	if l.down.blocked() {
		return true
	}
	return s.heldBack(&s.c.down, &l.gdown)
}

func (l *rateLimits) upBlocked(s *Session) bool {
	if l.up.blocked() {
		return true
	}
	return s.heldBack(&s.c.up, &l.gup)
}

// heldBack reports whether the global limit b holds the session back (it
// is spent, or the session took its quota of this refill), and if so asks
// to be woken at its next refill (Client.limitRefill): without that, a
// session would wait for its next event, and the sessions already busy
// when a refill lands would take all of it.
func (s *Session) heldBack(b *globalBucket, sh *share) bool {
	if !b.blocked() && !sh.over(b) {
		return false
	}
	// Spent quota counts as the limit holding us back too: with each
	// session stopping at its quota the bucket itself seldom runs dry.
	b.hit.Store(true)
	s.limitWake.Store(true)
	return true
}

// downAllowance is how many bytes may still be requested now, and whether
// any download limit applies at all.
func (l *rateLimits) downAllowance(s *Session) (int64, bool) {
	allowed, limited := int64(1<<62), false
	if t, ok := l.down.tokens(); ok {
		allowed, limited = t, true
	}
	if t, ok := s.c.down.tokens(); ok {
		allowed, limited = min(allowed, t), true
	}
	return allowed, limited
}
