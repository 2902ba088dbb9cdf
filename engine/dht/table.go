package dht

import (
	"net/netip"
	"slices"
	"time"
)

const (
	// K is the bucket size and the number of closest nodes a lookup
	// converges on and announces to.
	K = 8
	// goodWindow is BEP 5's 15 minutes: a node that answered us, or
	// queried us after having answered once, within it is good; a bucket
	// untouched for it gets refreshed.
	goodWindow = 15 * time.Minute
	// maxFails is how many queries in a row a node may leave unanswered
	// before it is bad and replaceable.
	maxFails   = 3
	maxBuckets = 160
)

type tableNode struct {
	NodeInfo
	lastResp  time.Time // last reply to one of our queries
	lastQuery time.Time // last query it sent us
	fails     int
}

func (n *tableNode) bad() bool { return n.fails >= maxFails }

func (n *tableNode) good(now time.Time) bool {
	return n.fails == 0 && !n.lastResp.IsZero() &&
		(now.Sub(n.lastResp) < goodWindow || now.Sub(n.lastQuery) < goodWindow)
}

type bucket struct {
	nodes   []*tableNode // at most K
	repl    []*tableNode // replacement cache, at most K, newest last
	changed time.Time    // last insertion or reply; drives refresh
}

// table is a Kademlia routing table with splitting of our own range:
// bucket i < last holds nodes sharing exactly i leading bits with self, the
// last bucket everything closer. Only the last bucket splits, so it holds
// at most maxBuckets*K nodes plus as many replacements whatever arrives.
// Nodes enter only through inserted, which the node calls for contacts that
// answered one of our queries; queries from unknown ids add nothing. Not
// safe for concurrent use: Node guards it with its mutex.
type table struct {
	self        NodeID
	allowSameIP bool
	buckets     []*bucket
	byAddr      map[netip.AddrPort]*tableNode // main and replacement entries
	byIP        map[netip.Addr]int
}

func newTable(self NodeID, allowSameIP bool, now time.Time) *table {
	return &table{self: self, allowSameIP: allowSameIP, buckets: []*bucket{{changed: now}},
		byAddr: make(map[netip.AddrPort]*tableNode), byIP: make(map[netip.Addr]int)}
}

func (t *table) bucketFor(id NodeID) int {
	return min(commonPrefixLen(t.self, id), len(t.buckets)-1)
}

func (t *table) track(n *tableNode) {
	t.byAddr[n.Addr] = n
	t.byIP[n.Addr.Addr()]++
}

func (t *table) untrack(n *tableNode) {
	delete(t.byAddr, n.Addr)
	if t.byIP[n.Addr.Addr()]--; t.byIP[n.Addr.Addr()] <= 0 {
		delete(t.byIP, n.Addr.Addr())
	}
}

// inserted records that id at addr answered one of our queries, adding it
// when its bucket has room (splitting our own range as needed), replacing a
// bad node, or else keeping it in the bucket's replacement cache.
func (t *table) inserted(id NodeID, addr netip.AddrPort, now time.Time) {
	if id == t.self {
		return
	}
	if n := t.byAddr[addr]; n != nil {
		b := t.buckets[t.bucketFor(n.ID)]
		if n.ID == id && slices.Contains(b.nodes, n) {
			n.lastResp, n.fails = now, 0
			b.changed = now
			return
		}
		// A replacement that answered may now fit in the bucket; a node
		// that restarted under a new id starts over.
		t.remove(n)
	}
	b := t.buckets[t.bucketFor(id)]
	if slices.ContainsFunc(b.nodes, func(n *tableNode) bool { return n.ID == id }) {
		return // the id is taken by another address: keep the one we know
	}
	if !t.allowSameIP && t.byIP[addr.Addr()] > 0 {
		return
	}
	n := &tableNode{NodeInfo: NodeInfo{ID: id, Addr: addr}, lastResp: now}
	for {
		bi := t.bucketFor(id)
		b = t.buckets[bi]
		if len(b.nodes) < K {
			b.nodes = append(b.nodes, n)
			break
		}
		if i := slices.IndexFunc(b.nodes, (*tableNode).bad); i >= 0 {
			t.untrack(b.nodes[i])
			b.nodes[i] = n
			break
		}
		if bi == len(t.buckets)-1 && len(t.buckets) < maxBuckets {
			t.split(now)
			continue
		}
		if i := slices.IndexFunc(b.repl, func(r *tableNode) bool { return r.ID == id }); i >= 0 {
			t.untrack(b.repl[i])
			b.repl = slices.Delete(b.repl, i, i+1)
		}
		if len(b.repl) >= K {
			t.untrack(b.repl[0])
			b.repl = slices.Delete(b.repl, 0, 1)
		}
		b.repl = append(b.repl, n)
		t.track(n)
		return
	}
	t.track(n)
	b.changed = now
}

// split divides the last bucket, moving nodes that share one more bit with
// self into a new last bucket.
func (t *table) split(now time.Time) {
	last := t.buckets[len(t.buckets)-1]
	next := &bucket{changed: now}
	depth := len(t.buckets) // cpl at or above which nodes move
	move := func(list []*tableNode) (stay, moved []*tableNode) {
		for _, n := range list {
			if commonPrefixLen(t.self, n.ID) >= depth {
				moved = append(moved, n)
			} else {
				stay = append(stay, n)
			}
		}
		return
	}
	last.nodes, next.nodes = move(last.nodes)
	last.repl, next.repl = move(last.repl)
	t.buckets = append(t.buckets, next)
}

// remove drops n from its bucket or replacement cache.
func (t *table) remove(n *tableNode) {
	b := t.buckets[t.bucketFor(n.ID)]
	b.nodes = slices.DeleteFunc(b.nodes, func(x *tableNode) bool { return x == n })
	b.repl = slices.DeleteFunc(b.repl, func(x *tableNode) bool { return x == n })
	t.untrack(n)
}

// queried records a query from id at addr. It reports whether the sender
// is unknown but would be inserted if it answered a ping: the caller may
// then verify it. Nothing is inserted here, so floods of fresh ids cost no
// table space.
func (t *table) queried(id NodeID, addr netip.AddrPort, now time.Time) (verify bool) {
	if n := t.byAddr[addr]; n != nil {
		if n.ID == id {
			n.lastQuery = now
		}
		return false
	}
	if id == t.self || (!t.allowSameIP && t.byIP[addr.Addr()] > 0) {
		return false
	}
	bi := t.bucketFor(id)
	b := t.buckets[bi]
	return len(b.nodes) < K || slices.ContainsFunc(b.nodes, (*tableNode).bad) ||
		(bi == len(t.buckets)-1 && len(t.buckets) < maxBuckets)
}

// failed records an unanswered query to addr. A node that turns bad is
// swapped for the newest replacement, if any.
func (t *table) failed(addr netip.AddrPort) {
	n := t.byAddr[addr]
	if n == nil {
		return
	}
	n.fails++
	if !n.bad() {
		return
	}
	b := t.buckets[t.bucketFor(n.ID)]
	if i := slices.Index(b.repl, n); i >= 0 {
		t.remove(n)
		return
	}
	if len(b.repl) > 0 {
		r := b.repl[len(b.repl)-1]
		b.repl = b.repl[:len(b.repl)-1]
		t.remove(n)
		b.nodes = append(b.nodes, r)
	}
}

// closest returns up to n non-bad nodes nearest to target, nearest first.
func (t *table) closest(target NodeID, n int) []NodeInfo {
	var all []NodeInfo
	for _, b := range t.buckets {
		for _, x := range b.nodes {
			if !x.bad() {
				all = append(all, x.NodeInfo)
			}
		}
	}
	slices.SortFunc(all, func(a, b NodeInfo) int { return cmpDistance(target, a.ID, b.ID) })
	return all[:min(n, len(all))]
}

// toPing returns up to max nodes that are neither good nor bad, least
// recently heard from first, for the maintenance pings that settle them.
func (t *table) toPing(now time.Time, max int) []NodeInfo {
	var q []*tableNode
	for _, b := range t.buckets {
		for _, x := range b.nodes {
			if !x.good(now) && !x.bad() {
				q = append(q, x)
			}
		}
	}
	slices.SortFunc(q, func(a, b *tableNode) int { return a.lastResp.Compare(b.lastResp) })
	out := make([]NodeInfo, 0, min(max, len(q)))
	for _, x := range q[:min(max, len(q))] {
		out = append(out, x.NodeInfo)
	}
	return out
}

// refreshTargets returns a random id in the range of every bucket
// untouched for goodWindow, marking them refreshed.
func (t *table) refreshTargets(now time.Time) []NodeID {
	var out []NodeID
	for i, b := range t.buckets {
		if now.Sub(b.changed) < goodWindow {
			continue
		}
		b.changed = now
		out = append(out, randomIDWithPrefix(t.self, i, i < len(t.buckets)-1))
	}
	return out
}

// goodNodes lists the good nodes, for saving.
func (t *table) goodNodes(now time.Time) []NodeInfo {
	var out []NodeInfo
	for _, b := range t.buckets {
		for _, x := range b.nodes {
			if x.good(now) {
				out = append(out, x.NodeInfo)
			}
		}
	}
	return out
}

// counts returns the main-table size, good nodes and replacements.
func (t *table) counts(now time.Time) (nodes, good, repl int) {
	for _, b := range t.buckets {
		nodes += len(b.nodes)
		repl += len(b.repl)
		for _, x := range b.nodes {
			if x.good(now) {
				good++
			}
		}
	}
	return
}
