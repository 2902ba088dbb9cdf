package dht

import (
	"context"
	"net/netip"
)

// serve answers a query. The per-IP rate limit applies before anything
// else, so a flood costs one map lookup per packet beyond the limit.
func (n *Node) serve(from netip.AddrPort, q *Msg) {
	now := n.cfg.Now()
	n.mu.Lock()
	if !n.limit.allow(from.Addr(), now) {
		n.stats.QueriesLimited++
		n.mu.Unlock()
		return
	}
	n.stats.QueriesServed++
	verify := !q.RO && n.table.queried(q.A.ID, from, now)
	r := Msg{T: q.T, Y: 'r', R: Reply{ID: n.id}, IP: from, V: version}
	switch q.Q {
	case MethodFindNode:
		n.setNodes(&r.R, q.A.Target)
	case MethodGetPeers:
		r.R.Token = n.tokens.issue(from.Addr(), now)
		r.R.Values = n.store.get(q.A.InfoHash, maxReplyValues, now)
		n.setNodes(&r.R, NodeID(q.A.InfoHash))
	case MethodAnnouncePeer:
		if !n.tokens.valid(q.A.Token, from.Addr(), now) {
			r = Msg{T: q.T, Y: 'e', E: RemoteError{Code: ErrCodeProtocol, Msg: "bad token"}, V: version}
			break
		}
		port := q.A.Port
		if q.A.ImpliedPort {
			port = int(from.Port())
		}
		n.store.add(q.A.InfoHash, netip.AddrPortFrom(from.Addr(), uint16(port)), now)
	}
	n.mu.Unlock()
	n.send(from, &r)
	if verify {
		n.verify(from)
	}
}

// setNodes fills the closest contacts of our family. Caller holds mu.
func (n *Node) setNodes(r *Reply, target NodeID) {
	nodes := n.table.closest(target, K)
	if n.v6 {
		r.Nodes6 = nodes
	} else {
		r.Nodes = nodes
	}
}

// serveError answers a malformed query, under the same rate limit.
func (n *Node) serveError(from netip.AddrPort, q *Msg, code int, text string) {
	n.mu.Lock()
	ok := n.limit.allow(from.Addr(), n.cfg.Now())
	if !ok {
		n.stats.QueriesLimited++
	}
	n.mu.Unlock()
	if ok {
		n.send(from, &Msg{T: q.T, Y: 'e', E: RemoteError{Code: code, Msg: text}, V: version})
	}
}

// verify pings an unknown querier whose bucket has room; its reply, if
// any, inserts it. At most maxVerify addresses are pinged at once, each
// once, so a flood of queries from fresh ids triggers a bounded trickle of
// pings and no table growth.
func (n *Node) verify(addr netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.verifying[addr]; dup || len(n.verifying) >= maxVerify || !n.started || n.closed {
		return
	}
	n.verifying[addr] = struct{}{}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.query(n.ctx, addr, Msg{Q: MethodPing})
		n.mu.Lock()
		delete(n.verifying, addr)
		n.mu.Unlock()
	}()
}

// AddNode asks the node to ping addr and add it to the routing table if
// it answers, e.g. for the port a peer announced with a BEP 5 PORT message.
// It returns at once; pings are bounded, so it may do nothing under load.
// Any goroutine.
func (n *Node) AddNode(addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	n.mu.Lock()
	ok := addr.IsValid() && addr.Port() != 0 && addr.Addr().Is6() == n.v6
	n.mu.Unlock()
	if ok {
		n.verify(addr)
	}
}

// Ping sends a ping to addr and returns the id it answers with; a node
// that answers enters the routing table. Any goroutine.
func (n *Node) Ping(ctx context.Context, addr netip.AddrPort) (NodeID, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return NodeID{}, err
	}
	defer done()
	r, err := n.query(ctx, addr, Msg{Q: MethodPing})
	return r.R.ID, err
}
