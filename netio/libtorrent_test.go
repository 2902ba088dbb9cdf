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

// interopSizes make a multi-file torrent of just over 64 MiB whose file
// sizes the 256 KiB piece length does not divide.
var interopSizes = []int{40<<20 + 1234, 24<<20 + 77, 999}

func ltAddr(p *peertest.Proc) netip.AddrPort {
	return netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", p.Port))
}

func TestDownloadFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-src", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers([]netip.AddrPort{ltAddr(seed)}, "test")
	sn := waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	if sn.Downloaded < mi.TotalLength {
		t.Fatalf("downloaded counter %d < size %d", sn.Downloaded, mi.TotalLength)
	}
}

func TestSeedToLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-seed", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 60*time.Second)
	out := t.TempDir()
	leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", out, "--peer", n.addr().String())
	if _, err := leech.WaitLine("DONE", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
	waitFor(t, "uploaded counter reaches the torrent size", 5*time.Second, func() bool {
		return s.Snapshot().Uploaded >= mi.TotalLength
	})
}
