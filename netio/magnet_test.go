package netio

import (
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// TestMagnetFromLibtorrent: given only a magnet link (x.pe names the
// libtorrent seeder), the session appears under its dn in state metadata,
// fetches and verifies the info dict over ut_metadata, then downloads.
func TestMagnetFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "magnet-src", []int{12<<20 + 17, 8<<20 + 9, 1234})
	tpath, mi := makeTorrent(t, data, 16<<10) // 1300 pieces: a two-piece info dict
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	mag := &metainfo.Magnet{InfoHash: mi.InfoHash, Name: "from-dn", Peers: []string{ltAddr(seed).String()}}
	m, err := metainfo.ParseMagnet(mag.String())
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.AddMagnet(m, engine.AddOptions{Dir: n.dir})
	if err != nil {
		t.Fatal(err)
	}
	if sn := s.Snapshot(); sn.Name != "from-dn" || (sn.State != engine.StateMetadata && sn.State != engine.StateStopped) {
		t.Fatalf("new magnet session: name %q state %s", sn.Name, sn.State)
	}
	sn := waitState(t, s, engine.StateSeeding, 60*time.Second)
	if sn.Name != mi.Name || sn.Size != mi.TotalLength {
		t.Fatalf("after metadata: name %q size %d", sn.Name, sn.Size)
	}
	if len(mi.InfoBytes) <= 16<<10 {
		t.Fatalf("info dict of %d bytes fits one metadata piece; the test wants several", len(mi.InfoBytes))
	}
	sameTree(t, mi, filepath.Dir(data), n.dir)
}

// TestMagnetServedToLibtorrent: libtorrent downloading by magnet from us
// gets the metadata over ut_metadata and then the data.
func TestMagnetServedToLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "magnet-seed", []int{4<<20 + 3, 2<<20 + 1})
	_, mi := makeTorrent(t, data, 32<<10)
	n := startNode(t, engine.Config{})
	addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	out := t.TempDir()
	mag := (&metainfo.Magnet{InfoHash: mi.InfoHash}).String()
	leech := peertest.Libtorrent(t, "--magnet", mag, "--dir", out, "--peer", n.addr().String())
	if _, err := leech.WaitLine("DONE", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
}
