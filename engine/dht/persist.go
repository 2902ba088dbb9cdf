package dht

import (
	"fmt"
	"net/netip"

	"gotorrentserver/metainfo"
)

// maxSavedNodes bounds what Save writes and Load reads.
const maxSavedNodes = 1000

var stateLimits = metainfo.Limits{MaxSize: 64 << 10, MaxDepth: 2}

// Save returns our id and the good nodes of the routing table, bencoded,
// for the daemon to keep in its state directory and pass to Load on the
// next start. Any goroutine.
func (n *Node) Save() ([]byte, error) {
	n.mu.Lock()
	nodes := n.table.goodNodes(n.cfg.Now())
	id, v6 := n.id, n.v6
	n.mu.Unlock()
	nodes = nodes[:min(len(nodes), maxSavedNodes)]
	key := "nodes"
	if v6 {
		key = "nodes6"
	}
	return metainfo.Encode(map[string]any{"id": id[:], key: appendCompactNodes(nil, nodes)})
}

// Load restores what Save wrote: our id replaces the configured one, and
// the saved nodes become extra bootstrap contacts (pinged, not trusted,
// since they may be long gone). Only before Start (ErrStarted after);
// ErrBadState for bytes it cannot read. Any goroutine.
func (n *Node) Load(b []byte) error {
	v, err := metainfo.DecodeLimits(b, stateLimits)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: not a dict", ErrBadState)
	}
	id, ok := id20(d, "id")
	if !ok {
		return fmt.Errorf("%w: no 20-byte id", ErrBadState)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.closed {
		return ErrStarted
	}
	key, size := "nodes", compactNodeV4
	if n.v6 {
		key, size = "nodes6", compactNodeV6
	}
	raw, _ := d[key].([]byte)
	var loaded []netip.AddrPort
	for _, ni := range parseCompactNodes(raw, size) {
		if len(loaded) < maxSavedNodes && ni.ID != NodeID(id) {
			loaded = append(loaded, ni.Addr)
		}
	}
	n.id, n.loaded = NodeID(id), loaded
	n.table = newTable(n.id, n.cfg.AllowSameIP, n.cfg.Now())
	return nil
}
