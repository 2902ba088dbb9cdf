package dht

import (
	"net/netip"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

func TestStoreBoundsAndExpiry(t *testing.T) {
	now := time.Unix(1e9, 0)
	s := newStore(100, 10, 30*time.Minute)
	ih := metainfo.Hash{1}
	for i := 0; i < 50; i++ {
		s.add(ih, addrN(i), now.Add(time.Duration(i)*time.Second))
	}
	got := s.get(ih, 100, now.Add(time.Minute))
	if len(got) != 10 || s.peers != 10 {
		t.Fatalf("%d peers kept, counter %d; want 10", len(got), s.peers)
	}
	// The newest announces survive.
	for _, p := range got {
		if p.Addr().As4()[3] < 40 {
			t.Fatalf("old peer %v kept over newer ones", p)
		}
	}
	// Re-announcing refreshes rather than duplicates.
	s.add(ih, addrN(49), now.Add(20*time.Minute))
	if s.peers != 10 {
		t.Fatalf("re-announce added a peer: %d", s.peers)
	}
	for i := 0; i < 1000; i++ {
		s.add(metainfo.Hash{2, byte(i), byte(i >> 8)}, addrN(i), now)
	}
	if len(s.swarms) != 100 {
		t.Fatalf("%d infohashes stored, bound 100", len(s.swarms))
	}
	s.expire(now.Add(40 * time.Minute))
	if len(s.swarms) != 1 || s.peers != 1 {
		t.Fatalf("after expiry %d swarms, %d peers; want only the refreshed peer", len(s.swarms), s.peers)
	}
	if got := s.get(ih, 5, now.Add(49*time.Minute)); len(got) != 1 {
		t.Fatalf("get %v", got)
	}
	if got := s.get(ih, 5, now.Add(51*time.Minute)); len(got) != 0 {
		t.Fatalf("expired peer handed out: %v", got)
	}
	v6 := netip.MustParseAddrPort("[2001:db8::1]:80")
	s.add(metainfo.Hash{6}, v6, now)
	if got := s.get(metainfo.Hash{6}, 5, now); len(got) != 1 || got[0] != v6 {
		t.Fatalf("IPv6 peer came back as %v", got)
	}
}

func TestTokens(t *testing.T) {
	now := time.Unix(1e9, 0)
	tk := newTokens(now)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	tok := tk.issue(a, now)
	if len(tok) != tokenLen || !tk.valid(tok, a, now) || tk.valid(tok, b, now) {
		t.Fatal("token not bound to its IP")
	}
	if !tk.valid(tok, a, now.Add(tokenRotate)) {
		t.Fatal("token rejected after one rotation")
	}
	if tk.valid(tok, a, now.Add(2*tokenRotate)) {
		t.Fatal("token accepted after two rotations")
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newLimiter(2, 4, 3)
	a := netip.MustParseAddr("10.0.0.1")
	ok := 0
	for i := 0; i < 10; i++ {
		if l.allow(a, now) {
			ok++
		}
	}
	if ok != 4 || l.allow(a, now.Add(100*time.Millisecond)) || !l.allow(a, now.Add(time.Second)) {
		t.Fatalf("burst %d, refill wrong", ok)
	}
	// The source table is bounded; idle sources are purged to make room.
	t1 := now.Add(time.Second)
	for i := 0; i < 10; i++ {
		l.allow(a, t1)
		l.allow(netip.MustParseAddr("10.0.0.2"), t1)
		l.allow(netip.MustParseAddr("10.0.0.3"), t1)
	}
	if l.allow(netip.MustParseAddr("10.0.0.9"), t1) || l.allow(netip.MustParseAddr("10.0.0.9"), t1.Add(500*time.Millisecond)) {
		t.Fatal("a fourth source admitted while three are active")
	}
	if !l.allow(netip.MustParseAddr("10.0.0.9"), now.Add(time.Minute)) || len(l.ips) > 3 {
		t.Fatalf("idle sources not purged: %d tracked", len(l.ips))
	}
}
