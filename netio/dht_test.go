package netio

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/dht"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// dhtNet starts n of our DHT nodes on 127.0.0.1, each joined only through
// the first one. Loopback nodes share one IP, so the one-node-per-IP rule
// and the per-IP query limit are lifted here.
func dhtNet(t *testing.T, n int) []*dht.Node {
	t.Helper()
	var nodes []*dht.Node
	for i := range n {
		cfg := dht.Config{Listen: "127.0.0.1:0", AllowSameIP: true, QueryRate: -1}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].LocalAddr().String()}
		}
		node, err := dht.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		nodes = append(nodes, node)
	}
	for _, node := range nodes[1:] {
		if err := node.Bootstrap(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// TestDHTMagnetCompletes: 24 of our DHT nodes and a python3-libtorrent
// seeder whose DHT joins only through our first node. A magnet with no
// trackers and no peers, added on a node whose DHT is another of ours,
// finds the seeder through the DHT, fetches the metadata and completes.
func TestDHTMagnetCompletes(t *testing.T) {
	peertest.Require(t, "libtorrent")
	nodes := dhtNet(t, 24)
	data := testData(t, "dht-swarm", []int{3<<20 + 11, 5000})
	tpath, mi := makeTorrent(t, data, 32<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep",
		"--dht-bootstrap", nodes[0].LocalAddr().String())
	if _, err := seed.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Our lookup runs once when the magnet is added and then every 2
	// minutes: under load the seeder's own announce could arrive after it.
	// Wait until some node stores the seeder, as a user would wait for it.
	deadline := time.Now().Add(60 * time.Second)
	for stored := 0; stored == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the libtorrent seeder never announced itself to our DHT nodes")
		}
		time.Sleep(50 * time.Millisecond)
		for _, node := range nodes {
			stored += node.Stats().StoredPeers
		}
	}
	n := startNode(t, engine.Config{DHT: nodes[len(nodes)-1]})
	s, err := n.client.AddMagnet(&metainfo.Magnet{InfoHash: mi.InfoHash, Name: "dht"}, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	sn := waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	found := false
	for _, p := range sn.Peers {
		found = found || p.Addr.String() == fmt.Sprintf("127.0.0.1:%d", seed.Port)
	}
	if !found {
		t.Fatalf("the libtorrent seeder is not among the peers: %+v", sn.Peers)
	}
}
