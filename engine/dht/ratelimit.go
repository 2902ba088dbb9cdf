package dht

import (
	"net/netip"
	"time"
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
	ips    map[netip.Addr]*ipBucket
	purged time.Time
}

type ipBucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, maxIPs int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), maxIPs: maxIPs, ips: make(map[netip.Addr]*ipBucket)}
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
		b = &ipBucket{tokens: l.burst, last: now}
		l.ips[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// purge forgets sources whose bucket has refilled: they are
// indistinguishable from new ones.
func (l *limiter) purge(now time.Time) {
	l.purged = now
	for ip, b := range l.ips {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.ips, ip)
		}
	}
}
