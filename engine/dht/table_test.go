package dht

import (
	"net/netip"
	"testing"
	"time"
)

func addrN(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
}

// checkInvariants: every node sits in the bucket its id maps to, buckets
// and caches respect K, and the address index matches the contents.
func checkInvariants(t *testing.T, tb *table) {
	t.Helper()
	seen := 0
	for i, b := range tb.buckets {
		if len(b.nodes) > K || len(b.repl) > K {
			t.Fatalf("bucket %d: %d nodes, %d replacements", i, len(b.nodes), len(b.repl))
		}
		for _, n := range append(append([]*tableNode{}, b.nodes...), b.repl...) {
			if tb.bucketFor(n.ID) != i {
				t.Fatalf("node with cpl %d in bucket %d of %d", commonPrefixLen(tb.self, n.ID), i, len(tb.buckets))
			}
			if tb.byAddr[n.Addr] != n {
				t.Fatalf("address index out of step for %v", n.Addr)
			}
			seen++
		}
	}
	if seen != len(tb.byAddr) {
		t.Fatalf("index holds %d entries, buckets %d", len(tb.byAddr), seen)
	}
}

func TestTableSplitsAndBounds(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := newTable(RandomNodeID(), false, now)
	for i := 0; i < 20000; i++ {
		tb.inserted(RandomNodeID(), addrN(i), now)
	}
	checkInvariants(t, tb)
	nodes, good, repl := tb.counts(now)
	// 20,000 random ids fill about log2(20000/8) ≈ 11 buckets.
	if len(tb.buckets) < 8 || len(tb.buckets) > 20 || nodes > len(tb.buckets)*K || repl > len(tb.buckets)*K || good != nodes {
		t.Fatalf("%d buckets, %d nodes (%d good), %d replacements", len(tb.buckets), nodes, good, repl)
	}
	// The nearest nodes to ourselves are all kept: the last buckets are
	// the finely split ones.
	if got := len(tb.closest(tb.self, K)); got != K {
		t.Fatalf("closest returned %d", got)
	}
}

func TestTableQueriedDoesNotInsert(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := newTable(RandomNodeID(), true, now)
	for i := 0; i < 1000; i++ {
		tb.queried(RandomNodeID(), addrN(i), now)
	}
	if n, _, _ := tb.counts(now); n != 0 {
		t.Fatalf("queries inserted %d nodes", n)
	}
	id := RandomNodeID()
	if !tb.queried(id, addrN(1), now) {
		t.Fatal("an unknown querier with room in its bucket is not worth verifying")
	}
	tb.inserted(id, addrN(1), now)
	if tb.queried(id, addrN(1), now) {
		t.Fatal("a known node asked to be verified again")
	}
}

func TestTableStatesAndReplacement(t *testing.T) {
	now := time.Unix(1e9, 0)
	self := NodeID{}
	tb := newTable(self, false, now)
	far := func(i int) NodeID { id := RandomNodeID(); id[0] |= 0x80; return id }
	// Force a split first so bucket 0 (first bit differs) is not the last.
	near := RandomNodeID()
	near[0] &^= 0x80
	tb.inserted(near, addrN(999), now)
	for i := 0; i < 2*K; i++ {
		tb.inserted(far(i), addrN(i), now)
	}
	checkInvariants(t, tb)
	b := tb.buckets[0]
	if len(tb.buckets) < 2 || len(b.nodes) != K || len(b.repl) != K {
		t.Fatalf("%d buckets, far bucket %d nodes %d replacements", len(tb.buckets), len(b.nodes), len(b.repl))
	}
	victim := b.nodes[0]
	newest := b.repl[len(b.repl)-1]
	// Good, then questionable after 15 quiet minutes, then bad after
	// maxFails unanswered queries, when the newest replacement takes over.
	if !victim.good(now) || victim.good(now.Add(goodWindow)) {
		t.Fatal("15-minute rule not applied")
	}
	if got := tb.toPing(now.Add(goodWindow), 100); len(got) != 2*K+1-K {
		t.Fatalf("%d questionable nodes to ping, want all %d in buckets", len(got), K+1)
	}
	for i := 0; i < maxFails; i++ {
		tb.failed(victim.Addr)
	}
	checkInvariants(t, tb)
	if tb.byAddr[victim.Addr] != nil || !containsNode(b.nodes, newest) || len(b.repl) != K-1 {
		t.Fatal("bad node not replaced by the newest replacement")
	}
	// A node queried by us recently after being questionable is good again.
	other := b.nodes[1]
	tb.inserted(other.ID, other.Addr, now.Add(goodWindow))
	if !other.good(now.Add(goodWindow)) {
		t.Fatal("a reply did not make the node good again")
	}
}

func containsNode(list []*tableNode, n *tableNode) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

func TestTableOneNodePerIP(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := newTable(RandomNodeID(), false, now)
	ip := netip.MustParseAddr("10.1.1.1")
	for port := 1; port <= 50; port++ {
		tb.inserted(RandomNodeID(), netip.AddrPortFrom(ip, uint16(port)), now)
	}
	if n, _, r := tb.counts(now); n+r != 1 {
		t.Fatalf("%d entries for one IP", n+r)
	}
	// A node at a known address that comes back with a new id replaces
	// its old entry instead of adding one.
	a := addrN(7)
	tb.inserted(RandomNodeID(), a, now)
	tb.inserted(RandomNodeID(), a, now)
	checkInvariants(t, tb)
	if n, _, r := tb.counts(now); n+r != 2 {
		t.Fatalf("%d entries after an id change", n+r)
	}
}

func TestRefreshTargetsInRange(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := newTable(RandomNodeID(), true, now)
	for i := 0; i < 2000; i++ {
		tb.inserted(RandomNodeID(), addrN(i), now)
	}
	if got := tb.refreshTargets(now.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("fresh buckets refreshed: %d", len(got))
	}
	targets := tb.refreshTargets(now.Add(goodWindow))
	if len(targets) != len(tb.buckets) {
		t.Fatalf("%d targets for %d stale buckets", len(targets), len(tb.buckets))
	}
	for i, id := range targets {
		if tb.bucketFor(id) != i {
			t.Fatalf("target for bucket %d falls in bucket %d", i, tb.bucketFor(id))
		}
	}
	if got := tb.refreshTargets(now.Add(goodWindow)); len(got) != 0 {
		t.Fatal("buckets refreshed twice")
	}
}
