package dht

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

func TestTwoNodesPing(t *testing.T) {
	a := startNode(t, Config{})
	b := startNode(t, Config{})
	id, err := b.Ping(testCtx(t, 5*time.Second), a.LocalAddr())
	if err != nil || id != a.ID() {
		t.Fatalf("ping: %v, id %v want %v", err, id, a.ID())
	}
	if s := b.Stats(); s.Nodes != 1 {
		t.Fatalf("pinger's table has %d nodes, want the node that answered", s.Nodes)
	}
	// A learns B by pinging it back, since B's query alone proves nothing.
	waitFor(t, 3*time.Second, "A to verify and add B", func() bool { return a.Stats().Nodes == 1 })
}

func TestPingTimeout(t *testing.T) {
	a := startNode(t, Config{QueryTimeout: 200 * time.Millisecond})
	silent := newRawClient(t, "127.0.0.1")
	to := silent.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	start := time.Now()
	if _, err := a.Ping(testCtx(t, 5*time.Second), to); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ping of a silent socket: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if a.Stats().Pending != 0 {
		t.Fatal("timed-out transaction left pending")
	}
}

// A network of 25 of our nodes, joined only through node 0: a node far in
// id space from the announcer finds it through get_peers.
func TestNetworkAnnounceGetPeers(t *testing.T) {
	const size = 25
	ih := metainfo.Hash(RandomNodeID())
	ih[0] &^= 0x80
	announcerID := NodeID(ih)
	announcerID[19] ^= 1 // near the infohash: first bit 0
	searcherID := NodeID(ih)
	searcherID[0] |= 0x80 // far: first bit 1

	nodes := []*Node{startNode(t, Config{})}
	seed := nodes[0].LocalAddr().String()
	for i := 1; i < size; i++ {
		cfg := Config{Bootstrap: []string{seed}}
		switch {
		case i == 5:
			cfg.ID = announcerID
		case i == 20:
			cfg.ID = searcherID
		case i%2 == 1:
			// Half the nodes share the infohash's first bit, so its K
			// nearest nodes never include the far searcher.
			cfg.ID = RandomNodeID()
			cfg.ID[0] &^= 0x80
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	// Everyone joins at once; early joiners learn the late ones from a
	// second round, as the periodic refresh would do.
	for round := 0; round < 2; round++ {
		var wg sync.WaitGroup
		for _, n := range nodes[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.Bootstrap(testCtx(t, 10*time.Second)); err != nil {
					t.Errorf("bootstrap: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	if t.Failed() {
		return
	}
	for i, n := range nodes {
		s := n.Stats()
		t.Logf("node %d: %d nodes in %d buckets", i, s.Nodes, s.Buckets)
		if s.Nodes < K {
			t.Errorf("node %d knows only %d nodes after bootstrap", i, s.Nodes)
		}
	}

	announcer, searcher := nodes[5], nodes[20]
	count, err := announcer.Announce(testCtx(t, 10*time.Second), ih, 6881, nil)
	if err != nil || count < K/2 {
		t.Fatalf("announce reached %d nodes: %v", count, err)
	}
	stored := 0
	for _, n := range nodes {
		stored += n.Stats().StoredPeers
	}
	// A node whose acceptance was lost in transit still stores it.
	if stored < count {
		t.Fatalf("%d nodes store the announce, %d accepted it", stored, count)
	}
	if s := searcher.Stats(); s.StoredPeers != 0 {
		t.Fatal("the far searcher stores the announce itself; the test proves nothing")
	}
	var found []netip.AddrPort
	err = searcher.GetPeers(testCtx(t, 10*time.Second), ih, func(ps []netip.AddrPort) {
		found = append(found, ps...)
	})
	want := netip.AddrPortFrom(announcer.LocalAddr().Addr(), 6881)
	if err != nil || !slices.Contains(found, want) {
		t.Fatalf("get_peers found %v (%v), want %v", found, err, want)
	}
	if len(found) != 1 {
		t.Fatalf("peers delivered more than once or invented: %v", found)
	}
}

func TestSaveLoad(t *testing.T) {
	a := startNode(t, Config{})
	b := startNode(t, Config{Bootstrap: []string{a.LocalAddr().String()}})
	if err := b.Bootstrap(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	saved, err := b.Save()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Listen: "127.0.0.1:0", AllowSameIP: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(saved); err != nil {
		t.Fatal(err)
	}
	if c.ID() != b.ID() {
		t.Fatal("Load did not restore the node id")
	}
	b.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No bootstrap configured: only the loaded contacts can lead to A.
	if err := c.Bootstrap(testCtx(t, 5*time.Second)); err != nil || c.Stats().Nodes == 0 {
		t.Fatalf("bootstrap from loaded nodes: %v, %d nodes", err, c.Stats().Nodes)
	}
	if err := c.Load(saved); !errors.Is(err, ErrStarted) {
		t.Fatalf("Load after Start: %v", err)
	}
	for _, bad := range []string{"", "de", "d2:id3:abce", "l2:ide"} {
		if err := c.Load([]byte(bad)); !errors.Is(err, ErrBadState) {
			t.Fatalf("Load(%q): %v", bad, err)
		}
	}
}

func TestClosedNode(t *testing.T) {
	n, err := New(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.GetPeers(testCtx(t, time.Second), metainfo.Hash{}, func([]netip.AddrPort) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetPeers before Start: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	n.Close()
	if _, err := n.Announce(testCtx(t, time.Second), metainfo.Hash{}, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Announce after Close: %v", err)
	}
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no listen address: %v", err)
	}
}

// Close interrupts blocked calls promptly and leaves nothing pending.
func TestCloseInterruptsCalls(t *testing.T) {
	n := startNode(t, Config{QueryTimeout: 30 * time.Second})
	silent := newRawClient(t, "127.0.0.1")
	to := silent.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	errc := make(chan error, 1)
	go func() {
		_, err := n.Ping(testCtx(t, time.Minute), to)
		errc <- err
	}()
	waitFor(t, 2*time.Second, "the ping to be pending", func() bool { return n.Stats().Pending == 1 })
	start := time.Now()
	n.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if s := n.Stats(); s.Pending != 0 {
		t.Fatalf("%d queries still pending after Close", s.Pending)
	}
	// Ping has returned (Close waited for it); its goroutine only has the
	// send on errc left.
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("ping of a silent node succeeded")
		}
	case <-time.After(time.Second):
		t.Fatal("Ping still blocked after Close")
	}
}

// A node on the caller's socket binds nothing, speaks on it, and closes it.
func TestNodeOnCallersConn(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Conn: pc, AllowSameIP: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.LocalAddr() != pc.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("node on %v, socket on %v", n.LocalAddr(), pc.LocalAddr())
	}
	other := startNode(t, Config{})
	if id, err := other.Ping(testCtx(t, 5*time.Second), n.LocalAddr()); err != nil || id != n.ID() {
		t.Fatalf("ping the node on the caller's socket: %v %v", id, err)
	}
	n.Close()
	if _, err := pc.WriteToUDPAddrPort([]byte("x"), n.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the socket is still open after Close: %v", err)
	}
}
