package dht

import (
	"time"
)

// maintainEvery paces table upkeep. Token rotation and storage expiry are
// checked on the same tick; both are cheap when there is nothing to do.
const maintainEvery = time.Minute

// maintain bootstraps when the table is empty and keeps the node healthy:
// rotating tokens, expiring stored peers, pinging nodes whose state is in
// doubt and refreshing buckets idle for 15 minutes. It runs on its own
// goroutine until Close.
func (n *Node) maintain() {
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
	for {
		n.maintainOnce()
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) maintainOnce() {
	now := n.cfg.Now()
	n.mu.Lock()
	n.tokens.maybeRotate(now)
	n.store.expire(now)
	n.limit.purge(now)
	ping := n.table.toPing(now, maxVerify/2)
	targets := n.table.refreshTargets(now)
	nodes, _, _ := n.table.counts(now)
	haveSeeds := len(n.cfg.Bootstrap) > 0 || len(n.loaded) > 0
	n.mu.Unlock()
	if nodes == 0 {
		if haveSeeds {
			if err := n.bootstrap(n.ctx); err != nil && n.ctx.Err() == nil {
				n.cfg.Logf("dht: bootstrap: %v", err)
			}
		}
		return
	}
	for _, ni := range ping {
		n.verify(ni.Addr) // the reply or the timeout settles its state
	}
	for _, t := range targets {
		if n.ctx.Err() != nil {
			return
		}
		n.lookup(n.ctx, t, MethodFindNode, nil, nil)
	}
}
