package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gotorrentserver/metainfo"
)

// GetPeers looks ih up in the DHT and calls fn with each batch of newly
// found peers (peers in our own store first), deduplicated across the
// lookup. It blocks until the lookup converges, LookupTimeout passes or
// ctx ends, and returns nil if the lookup ran (even if it found no peers).
// fn runs on the calling goroutine and must not block for long; it must
// not call Close. Any goroutine.
func (n *Node) GetPeers(ctx context.Context, ih metainfo.Hash, fn func([]netip.AddrPort)) error {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	n.mu.Lock()
	local := n.store.get(ih, maxReplyValues, n.cfg.Now())
	n.mu.Unlock()
	seen := make(map[netip.AddrPort]bool, len(local))
	if len(local) > 0 {
		for _, p := range local {
			seen[p] = true
		}
		fn(local)
	}
	_, err = n.lookup(ctx, NodeID(ih), MethodGetPeers, nil, func(ps []netip.AddrPort) {
		fresh := ps[:0]
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				fresh = append(fresh, p)
			}
		}
		if len(fresh) > 0 {
			fn(fresh)
		}
	})
	return err
}

// Announce tells the DHT that we accept peers for ih on TCP port port
// (port 0 announces with implied_port, i.e. our DHT UDP port, for uTP). It
// runs a get_peers lookup, passing found peers to fn when fn is not nil,
// then sends announce_peer to the K nearest nodes that gave a token. It
// returns how many accepted the announce; zero with the last error when
// none did. Blocking like GetPeers, with the same rules for fn. Any
// goroutine.
func (n *Node) Announce(ctx context.Context, ih metainfo.Hash, port int, fn func([]netip.AddrPort)) (int, error) {
	if port < 0 || port > 65535 {
		return 0, fmt.Errorf("%w: port %d", ErrConfig, port)
	}
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	closest, err := n.lookup(ctx, NodeID(ih), MethodGetPeers, nil, fn)
	if len(closest) == 0 {
		if err == nil {
			err = ErrNoNodes
		}
		return 0, err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      int
		lastErr error = ErrNoNodes
	)
	for _, c := range closest {
		if len(c.token) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := Msg{Q: MethodAnnouncePeer, A: Args{InfoHash: ih, Port: port, ImpliedPort: port == 0, Token: c.token}}
			_, err := n.query(ctx, c.Addr, q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
			} else {
				ok++
			}
		}()
	}
	wg.Wait()
	if ok == 0 {
		return 0, lastErr
	}
	return ok, nil
}

// Bootstrap joins the DHT: a find_node lookup of our own id starting from
// the configured bootstrap nodes, loaded nodes and the current table. It
// blocks until the lookup ends and returns ErrNoNodes if the table is
// still empty. Start runs it in the background when the table is empty;
// calling it directly lets a caller wait for it. Any goroutine.
func (n *Node) Bootstrap(ctx context.Context) error {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	return n.bootstrap(ctx)
}

func (n *Node) bootstrap(ctx context.Context) error {
	seeds := n.resolveBootstrap(ctx)
	n.mu.Lock()
	seeds = append(seeds, n.loaded...)
	self := n.id
	n.mu.Unlock()
	if _, err := n.lookup(ctx, self, MethodFindNode, seeds, nil); err != nil && ctx.Err() != nil {
		return err
	}
	if s := n.Stats(); s.Nodes == 0 {
		return ErrNoNodes
	}
	return nil
}

// resolveBootstrap turns the configured host:port strings into addresses
// of our family. Only these configured names are ever resolved.
func (n *Node) resolveBootstrap(ctx context.Context) []netip.AddrPort {
	var out []netip.AddrPort
	for _, hp := range n.cfg.Bootstrap {
		host, portStr, err := net.SplitHostPort(hp)
		if err != nil {
			n.cfg.Logf("dht: bootstrap node %q: %v", hp, err)
			continue
		}
		port, err := net.LookupPort("udp", portStr)
		if err != nil || port == 0 {
			n.cfg.Logf("dht: bootstrap node %q: bad port", hp)
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			n.cfg.Logf("dht: bootstrap node %q: %v", hp, err)
			continue
		}
		for _, ip := range ips {
			if ip = ip.Unmap(); ip.Is6() == n.v6 {
				out = append(out, netip.AddrPortFrom(ip, uint16(port)))
			}
		}
	}
	return out
}
