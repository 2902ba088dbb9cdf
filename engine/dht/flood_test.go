package dht

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

const (
	floodQueries = 100_000
	floodIDs     = 10_000
	floodTime    = 8 * time.Second
	// floodMaxTime bounds a flood that must reach a bound (full), however
	// slowly a loaded machine lets the node take it.
	floodMaxTime = 40 * time.Second
)

// flooder sends queries from several 127.0.0.x sources with random node
// ids, and answers the node's verification pings with yet more random ids
// so that every source is as eager to enter the routing table as it can be.
type flooder struct {
	t       *testing.T
	clients []*rawClient
	tokens  [][]byte
	stop    chan struct{}
}

func newFlooder(t *testing.T, to netip.AddrPort, sources int) *flooder {
	f := &flooder{t: t, stop: make(chan struct{})}
	for i := 0; i < sources; i++ {
		c := newRawClient(t, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}).String())
		r := c.rpc(to, Msg{Q: MethodGetPeers, A: Args{ID: RandomNodeID(), InfoHash: metainfo.Hash(RandomNodeID())}})
		if len(r.R.Token) == 0 {
			t.Fatal("no token for the flooder")
		}
		f.clients, f.tokens = append(f.clients, c), append(f.tokens, r.R.Token)
	}
	for _, c := range f.clients {
		go f.answerPings(c)
	}
	t.Cleanup(func() { close(f.stop) })
	return f
}

func (f *flooder) answerPings(c *rawClient) {
	buf := make([]byte, 4096)
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		nr, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if m, err := ParseMsg(buf[:nr]); err == nil && m.Y == 'q' {
			b, _ := EncodeMsg(&Msg{T: m.T, Y: 'r', R: Reply{ID: RandomNodeID()}})
			c.conn.WriteToUDPAddrPort(b, from)
		}
	}
}

// run sends floodQueries queries, alternating get_peers and announce_peer
// for fresh infohashes, within floodTime; it returns how many it sent. With
// full set, it goes on (up to floodMaxTime and three times floodQueries)
// until full reports true, and then 8192 more: on a loaded machine the
// socket drops much of a flood, and a bound must still be reached to be
// tested.
func (f *flooder) run(to netip.AddrPort, full func() bool) int {
	ids := make([]NodeID, floodIDs)
	for i := range ids {
		ids[i] = RandomNodeID()
	}
	deadline, limit := time.Now().Add(floodTime), floodQueries
	if full != nil {
		deadline, limit = time.Now().Add(floodMaxTime), 3*floodQueries
	}
	sent := 0
	for ; sent < limit && time.Now().Before(deadline); sent++ {
		if full != nil && sent%1024 == 1023 && full() {
			// Full: a little more, to see it stays at its bound.
			limit, full = sent+8192, nil
		}
		src := sent % len(f.clients)
		m := Msg{T: []byte{byte(sent), byte(sent >> 8)}, Y: 'q', Q: MethodGetPeers,
			A: Args{ID: ids[sent%floodIDs], InfoHash: metainfo.Hash(RandomNodeID())}}
		if sent%2 == 1 {
			m.Q, m.A.Port, m.A.Token = MethodAnnouncePeer, 1+rand.IntN(65535), f.tokens[src]
		}
		b, _ := EncodeMsg(&m)
		f.clients[src].conn.WriteToUDPAddrPort(b, to)
		if sent%64 == 63 {
			// Let the node's reader keep up a little, so a good share of
			// the flood is actually processed rather than lost in the
			// socket buffer.
			time.Sleep(200 * time.Microsecond)
		}
	}
	return sent
}

// settle waits until the node has stopped receiving queries.
func settle(n *Node) Stats {
	last := n.Stats()
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		s := n.Stats()
		if s.QueriesServed+s.QueriesLimited == last.QueriesServed+last.QueriesLimited {
			return s
		}
		last = s
	}
	return last
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestFloodStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const sources = 4
	for _, tc := range []struct {
		name   string
		cfg    Config
		maxMiB float64
	}{
		// Production defaults: the per-IP limit absorbs the flood.
		{"default-limits", Config{}, 2},
		// No rate limit, so the store and table bounds take the whole
		// flood; the store fills up to its cap and stays there.
		{"unlimited-rate", Config{QueryRate: -1, MaxInfohashes: 10_000}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Listen = "127.0.0.1:0"
			n, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(); err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			f := newFlooder(t, n.LocalAddr(), sources)
			before := heapInUse()
			start := time.Now()
			var full func() bool
			if cfg.QueryRate < 0 {
				full = func() bool { return n.Stats().Infohashes >= n.cfg.MaxInfohashes }
			}
			sent := f.run(n.LocalAddr(), full)
			s := settle(n)
			elapsed := time.Since(start)
			growth := float64(int64(heapInUse())-int64(before)) / (1 << 20)
			t.Logf("sent %d in %v: served %d, limited %d, stored %d peers for %d infohashes, table %d nodes, heap %+.2f MiB",
				sent, elapsed.Round(time.Millisecond), s.QueriesServed, s.QueriesLimited, s.StoredPeers, s.Infohashes, s.Nodes, growth)

			if s.Infohashes > n.cfg.MaxInfohashes || s.StoredPeers > n.cfg.MaxInfohashes*n.cfg.MaxPeersPerInfohash {
				t.Errorf("store over its bounds: %d infohashes, %d peers", s.Infohashes, s.StoredPeers)
			}
			// Each source answers pings, but one IP holds one table slot.
			if s.Nodes > sources || s.Replacements > sources {
				t.Errorf("routing table grew to %d nodes + %d replacements from %d sources", s.Nodes, s.Replacements, sources)
			}
			if growth > tc.maxMiB {
				t.Errorf("heap grew %.2f MiB, bound %.0f MiB", growth, tc.maxMiB)
			}
			if s.Pending > maxVerify {
				t.Errorf("%d queries of ours pending", s.Pending)
			}
			if cfg.QueryRate == 0 {
				// Per source: the burst plus the sustained rate.
				limit := int64(sources) * int64(n.cfg.QueryBurst+int(elapsed.Seconds()*n.cfg.QueryRate)+1)
				if s.QueriesServed > limit || s.QueriesLimited == 0 {
					t.Errorf("served %d queries, limit %d", s.QueriesServed, limit)
				}
			} else if s.Infohashes < n.cfg.MaxInfohashes {
				t.Errorf("only %d infohashes stored: the flood never reached the store bound", s.Infohashes)
			}
		})
	}
}
