package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Abuse costs the sender in three steps: an offence that breaks no rule of
// the protocol but asks more than a peer needs (an extra metadata request,
// an unrequested block past its allowance, an oversized PEX message) is
// dropped and counted on the connection; at maxOffences the connection is
// closed; a third such closing of one address within strikeWindow bans it
// for abuseBan. Protocol violations skip the first step. Sending all of a
// piece that fails its hash bans at once, for hashBan.
const (
	maxOffences  = 8
	strikesToBan = 3
	strikeWindow = time.Hour
	abuseBan     = time.Hour
	hashBan      = 24 * time.Hour
	// maxBanEntries bounds each of the ban and strike tables: an attacker
	// with many addresses (IPv6) must not grow them without end.
	maxBanEntries = 1 << 16
)

var (
	// ErrDialBusy: the network layer has too many dials queued; the
	// session retries soon, without counting a failure against the peer.
	ErrDialBusy = errors.New("engine: too many dials queued")
	// errFlooding: a peer sends faster than its session handles messages.
	errFlooding = errors.New("engine: peer floods messages faster than they are handled")
	// errBothSeeds closes a connection without blaming the peer.
	errBothSeeds = errors.New("engine: both sides are seeds")
)

// banList is the client's record of abusive addresses, keyed by banKey.
// Entries expire, and each table holds at most maxBanEntries: when full,
// expired entries go first, then the one nearest its end. Safe for
// concurrent use: every session and the accept path consult it.
type banList struct {
	mu      sync.Mutex
	until   map[netip.AddrPort]time.Time
	strikes map[netip.AddrPort]strikeRecord
	max     int
}

type strikeRecord struct {
	n     int
	first time.Time
}

func newBanList() *banList {
	return &banList{until: map[netip.AddrPort]time.Time{}, strikes: map[netip.AddrPort]strikeRecord{}, max: maxBanEntries}
}

// banned reports whether key is banned at now.
func (b *banList) banned(key netip.AddrPort, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[key]
	if ok && !now.Before(t) {
		delete(b.until, key)
		return false
	}
	return ok
}

// ban refuses key until now+d (a longer ban already there stays).
func (b *banList) ban(key netip.AddrPort, now time.Time, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	end := now.Add(d)
	if t, ok := b.until[key]; ok && t.After(end) {
		return
	}
	if _, ok := b.until[key]; !ok && len(b.until) >= b.max {
		evictSoonest(b.until, now, func(t time.Time) time.Time { return t })
	}
	b.until[key] = end
	delete(b.strikes, key)
}

// strike counts one abusive closing of key; true when that makes a ban,
// which it records.
func (b *banList) strike(key netip.AddrPort, now time.Time) bool {
	b.mu.Lock()
	r, ok := b.strikes[key]
	if !ok || now.Sub(r.first) > strikeWindow {
		if !ok && len(b.strikes) >= b.max {
			evictSoonest(b.strikes, now.Add(-strikeWindow), func(r strikeRecord) time.Time { return r.first })
		}
		r = strikeRecord{first: now}
	}
	r.n++
	b.strikes[key] = r
	b.mu.Unlock()
	if r.n >= strikesToBan {
		b.ban(key, now, abuseBan)
		return true
	}
	return false
}

// evictSoonest drops the entries whose time is before cutoff, or, when none
// is, the one with the earliest time. Caller holds the lock; O(n), and only
// reached when a table is full.
func evictSoonest[V any](m map[netip.AddrPort]V, cutoff time.Time, at func(V) time.Time) {
	var oldest netip.AddrPort
	var oldestAt time.Time
	dropped := false
	for k, v := range m {
		t := at(v)
		if t.Before(cutoff) {
			delete(m, k)
			dropped = true
			continue
		}
		if oldestAt.IsZero() || t.Before(oldestAt) {
			oldest, oldestAt = k, t
		}
	}
	if !dropped && !oldestAt.IsZero() {
		delete(m, oldest)
	}
}

// banKey is what a ban applies to: the IP address, except on loopback,
// where many peers share one address (test swarms, local clients) and only
// the port tells them apart.
func banKey(a netip.AddrPort) netip.AddrPort {
	if a.Addr().IsLoopback() {
		return a
	}
	return netip.AddrPortFrom(a.Addr(), 0)
}

func (s *Session) isBanned(a netip.AddrPort) bool { return s.c.bans.banned(banKey(a), s.now) }

// Banned reports whether connections from a are refused; the network layer
// asks before a new connection costs anything. Safe for concurrent use.
func (c *Client) Banned(a netip.AddrPort) bool { return c.bans.banned(banKey(a), c.cfg.Now()) }

// offence counts something p asked for that it does not need; the request
// itself has been dropped. Past maxOffences p loses its connection. It
// reports whether p was dropped.
func (s *Session) offence(p *peer, why string) bool {
	p.offences++
	if p.offences < maxOffences {
		return false
	}
	s.dropAbuser(p, fmt.Errorf("engine: %d offences, the last: %s", p.offences, why))
	return true
}

// dropAbuser closes p for abuse and strikes its address.
func (s *Session) dropAbuser(p *peer, reason error) {
	if p.closed {
		return
	}
	if s.c.bans.strike(banKey(p.addr), s.now) {
		s.logAt(slog.LevelWarn, "peer banned", "peer", p.addr.String(), "for", abuseBan.String(), "reason", reason.Error())
	}
	s.dropPeer(p, reason)
}

// ban closes p, refuses its address from now on, and throws away every
// partial piece it contributed to, since its blocks there are suspect too.
func (s *Session) ban(p *peer, why string) {
	s.c.bans.ban(banKey(p.addr), s.now, hashBan)
	s.logAt(slog.LevelWarn, "peer banned", "peer", p.addr.String(), "for", hashBan.String(), "reason", why)
	s.discardContributions(p)
	s.dropPeer(p, fmt.Errorf("engine: banned: %s", why))
}
