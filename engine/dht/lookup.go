package dht

import (
	"context"
	"net/netip"
	"slices"
	"sync"
)

const (
	alpha            = 3   // queries in flight per lookup
	maxLookupQueries = 128 // bounds one lookup however the network answers
	maxCandidates    = 256 // nearest contacts a lookup remembers
	maxLookupPeers   = 4096
)

type candState uint8

const (
	candNew candState = iota
	candAsked
	candDone
	candFailed
)

type candidate struct {
	NodeInfo
	state candState
	token []byte
}

type candResult struct {
	c   *candidate
	msg Msg
	err error
}

// lookupResult is a node that answered a lookup, with the token it gave.
type lookupResult struct {
	NodeInfo
	token []byte
}

// lookup runs an iterative Kademlia search for target with method
// (find_node or get_peers): alpha queries in flight, always to the nearest
// unqueried contact, until the K nearest live contacts have all answered,
// or maxLookupQueries, LookupTimeout or ctx end it. Contacts with unknown
// ids (bootstrap addresses) are asked first. onPeers, if set, receives
// each batch of new peers from get_peers values, on this goroutine. It
// returns the nearest answering nodes, nearest first, at most K.
func (n *Node) lookup(ctx context.Context, target NodeID, method string, seeds []netip.AddrPort,
	onPeers func([]netip.AddrPort)) ([]lookupResult, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LookupTimeout)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	n.mu.Lock()
	self, local, known := n.id, n.local, n.table.closest(target, 2*K)
	n.mu.Unlock()
	var cands []*candidate
	seen := make(map[netip.AddrPort]bool)
	add := func(ni NodeInfo, seed bool) {
		if seen[ni.Addr] || (ni.ID == self && !seed) || ni.Addr == local || len(seen) >= 4*maxCandidates {
			return
		}
		seen[ni.Addr] = true
		c := &candidate{NodeInfo: ni}
		i, _ := slices.BinarySearchFunc(cands, c, func(a, b *candidate) int { return cmpDistance(target, a.ID, b.ID) })
		cands = slices.Insert(cands, i, c)
		if len(cands) > maxCandidates {
			// Forget the farthest contact not yet asked; asked ones stay
			// until they answer.
			if j := lastIndexFunc(cands, func(c *candidate) bool { return c.state == candNew }); j >= 0 {
				cands = slices.Delete(cands, j, j+1)
			}
		}
	}
	for _, a := range seeds {
		add(NodeInfo{ID: target, Addr: a}, true) // distance 0: asked first
	}
	for _, ni := range known {
		add(ni, false)
	}
	if len(cands) == 0 {
		return nil, ErrNoNodes
	}

	results := make(chan candResult, alpha)
	peers := make(map[netip.AddrPort]bool)
	inflight, queries := 0, 0
	q := Msg{Q: method, A: Args{Target: target, InfoHash: [20]byte(target)}}
	for {
		for inflight < alpha && queries < maxLookupQueries {
			c := nextCandidate(cands)
			if c == nil {
				break
			}
			c.state = candAsked
			inflight++
			queries++
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg, err := n.query(ctx, c.Addr, q)
				results <- candResult{c: c, msg: msg, err: err}
			}()
		}
		if inflight == 0 {
			break
		}
		var r candResult
		select {
		case r = <-results:
		case <-ctx.Done():
			return answered(cands), ctx.Err()
		}
		inflight--
		if r.err != nil {
			r.c.state = candFailed
			continue
		}
		r.c.state, r.c.token = candDone, r.msg.R.Token
		if r.c.ID != r.msg.R.ID { // a seed, or a contact that changed id
			r.c.ID = r.msg.R.ID
			slices.SortStableFunc(cands, func(a, b *candidate) int { return cmpDistance(target, a.ID, b.ID) })
		}
		contacts := r.msg.R.Nodes
		if n.v6 {
			contacts = r.msg.R.Nodes6
		}
		for _, ni := range contacts {
			add(ni, false)
		}
		if onPeers != nil && len(r.msg.R.Values) > 0 {
			var fresh []netip.AddrPort
			for _, p := range r.msg.R.Values {
				if !peers[p] && len(peers) < maxLookupPeers {
					peers[p] = true
					fresh = append(fresh, p)
				}
			}
			if len(fresh) > 0 {
				onPeers(fresh)
			}
		}
	}
	return answered(cands), nil
}

// nextCandidate returns the nearest unasked contact, unless the K nearest
// live contacts have already answered: then the lookup has converged.
func nextCandidate(cands []*candidate) *candidate {
	done := 0
	for _, c := range cands {
		switch c.state {
		case candNew:
			return c
		case candDone:
			if done++; done >= K {
				return nil
			}
		}
	}
	return nil
}

func answered(cands []*candidate) []lookupResult {
	var out []lookupResult
	for _, c := range cands {
		if c.state == candDone && len(out) < K {
			out = append(out, lookupResult{NodeInfo: c.NodeInfo, token: c.token})
		}
	}
	return out
}

func lastIndexFunc[T any](s []T, f func(T) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}
