package netio

import (
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/peertest"
)

// TestSwarmDownloadAndUpload: a real seeder, our node, and a real leecher
// that joins later and knows only us. Our download is rate limited so that
// it is still running when the leecher arrives: we must upload the pieces we
// already have while downloading the rest, and the leecher must complete
// from us alone.
func TestSwarmDownloadAndUpload(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "swarm", []int{10<<20 + 4321, 6<<20 + 5})
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir, MaxDown: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(ltAddr(seed)), "test")
	waitFor(t, "a quarter downloaded", 30*time.Second, func() bool {
		sn := s.Snapshot()
		return sn.Have*4 >= sn.NumPieces
	})
	out := t.TempDir()
	leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", out, "--peer", n.addr().String())
	waitFor(t, "upload while still downloading", 30*time.Second, func() bool {
		sn := s.Snapshot()
		return sn.State == engine.StateDownloading && sn.Uploaded > 0
	})
	if _, err := leech.WaitLine("DONE", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 60*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	sameTree(t, mi, filepath.Dir(data), out)
}
