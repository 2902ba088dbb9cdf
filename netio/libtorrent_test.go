package netio

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/peertest"
)

func TestDownloadFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-src", []int{3<<20 + 1234, 5<<20 + 77, 999})
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Dir: n.dir})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers([]netip.AddrPort{netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", seed.Port))}, "test")
	sn := waitState(t, s, engine.StateSeeding, 60*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	if sn.Downloaded < mi.TotalLength {
		t.Fatalf("downloaded counter %d < size %d", sn.Downloaded, mi.TotalLength)
	}
}
