package dht

import (
	"net/netip"
	"time"

	"gotorrentserver/engine/ratelimit"
)

// limiter is a token bucket per source IP for incoming queries, so one
// host cannot monopolise the node, whatever node ids it claims. Its table
// is bounded by maxIPs: idle (refilled) entries are purged when it fills,
// at most once a second, and while it stays full new sources are refused.
// A spoofed-source flood thus costs bounded memory and at worst delays new
// legitimate sources briefly. Not safe for concurrent use: Node guards it.
type limiter struct {
	rate   float64 // tokens per second; <= 0 disables limiting
	burst  float64
	maxIPs int
	ips    map[netip.Addr]*ratelimit.Bucket
	purged time.Time
}

func newLimiter(rate float64, burst, maxIPs int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), maxIPs: maxIPs, ips: make(map[netip.Addr]*ratelimit.Bucket)}
}

func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	b := l.ips[ip]
	if b == nil {
		if len(l.ips) >= l.maxIPs {
			if now.Sub(l.purged) < time.Second {
				return false
			}
			l.purge(now)
			if len(l.ips) >= l.maxIPs {
				return false
			}
		}
		nb := ratelimit.New(l.rate, l.burst)
		nb.Refill(now)
		b = &nb
		l.ips[ip] = b
	}
	return b.Allow(now, 1)
}

// purge forgets sources whose bucket has refilled: they are
// indistinguishable from new ones.
func (l *limiter) purge(now time.Time) {
	l.purged = now
	for ip, b := range l.ips {
		if b.Refill(now); b.Tokens() >= l.burst {
			delete(l.ips, ip)
		}
	}
}
