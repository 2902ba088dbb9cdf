package dht

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"gotorrentserver/metainfo"
)

// storedPeer is kept pointer-free so a full store costs the garbage
// collector nothing to scan.
type storedPeer struct {
	addr    [16]byte
	port    uint16
	v4      bool
	expires int64 // unix nanoseconds
}

func (p storedPeer) addrPort() netip.AddrPort {
	a := netip.AddrFrom16(p.addr)
	if p.v4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, p.port)
}

// store keeps announced peers per infohash, bounded in both dimensions:
// at most maxHashes infohashes and maxPeers peers each, every peer expiring
// ttl after its last announce. When full, an arbitrary swarm (see
// evictSwarm) or the swarm's oldest peer makes room: an attacker announcing
// junk can churn the store but never grow it. Not safe for
// concurrent use: Node guards it with its mutex.
type store struct {
	maxHashes, maxPeers int
	ttl                 time.Duration
	swarms              map[metainfo.Hash][]storedPeer
	peers               int
}

func newStore(maxHashes, maxPeers int, ttl time.Duration) *store {
	return &store{maxHashes: maxHashes, maxPeers: maxPeers, ttl: ttl, swarms: make(map[metainfo.Hash][]storedPeer)}
}

func (s *store) add(ih metainfo.Hash, ap netip.AddrPort, now time.Time) {
	a := ap.Addr().Unmap()
	p := storedPeer{addr: a.As16(), port: ap.Port(), v4: a.Is4(), expires: now.Add(s.ttl).UnixNano()}
	list, ok := s.swarms[ih]
	if !ok && len(s.swarms) >= s.maxHashes {
		s.evictSwarm(now)
	}
	for i := range list {
		if list[i].addr == p.addr && list[i].port == p.port {
			list[i].expires = p.expires
			return
		}
	}
	if len(list) >= s.maxPeers {
		oldest := 0
		for i := range list {
			if list[i].expires < list[oldest].expires {
				oldest = i
			}
		}
		list[oldest] = p
		return
	}
	s.swarms[ih] = append(list, p)
	s.peers++
}

// evictSwarm drops one swarm: among the first few the map yields (in
// random order), the first that has expired or has a single peer, the
// cheapest to lose, else the last examined. Expiry proper runs from the
// maintenance loop; doing a full sweep here would make every announce of
// a full store cost a pass over it.
func (s *store) evictSwarm(now time.Time) {
	var victim metainfo.Hash
	seen, t := 0, now.UnixNano()
	for ih, list := range s.swarms {
		victim = ih
		if seen++; len(list) <= 1 || list[0].expires <= t || seen >= 8 {
			break
		}
	}
	s.peers -= len(s.swarms[victim])
	delete(s.swarms, victim)
}

// get returns up to max live peers for ih, a random sample when there are
// more, so every stored peer gets handed out over time.
func (s *store) get(ih metainfo.Hash, max int, now time.Time) []netip.AddrPort {
	list := s.swarms[ih]
	t := now.UnixNano()
	out := make([]netip.AddrPort, 0, min(max, len(list)))
	start := 0
	if len(list) > max {
		start = rand.IntN(len(list))
	}
	for i := 0; i < len(list) && len(out) < max; i++ {
		if p := list[(start+i)%len(list)]; p.expires > t {
			out = append(out, p.addrPort())
		}
	}
	return out
}

// expire drops peers past their ttl and swarms left empty.
func (s *store) expire(now time.Time) {
	t := now.UnixNano()
	for ih, list := range s.swarms {
		kept := list[:0]
		for _, p := range list {
			if p.expires > t {
				kept = append(kept, p)
			}
		}
		s.peers -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(s.swarms, ih)
		} else {
			s.swarms[ih] = kept
		}
	}
}
