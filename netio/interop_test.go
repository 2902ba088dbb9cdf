package netio

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// trackedTorrent makes the 64 MiB interop torrent announcing to a fresh
// opentracker; udp selects its UDP URL instead of HTTP.
func trackedTorrent(t *testing.T, name string, udp bool) (data, tpath string, mi *metainfo.MetaInfo, tr *peertest.Tracker) {
	t.Helper()
	data = testData(t, name, interopSizes)
	// The infohash depends on the tracker URL only outside the info dict,
	// so make it once to learn the hash, start the tracker, make it again.
	_, probe := makeTorrent(t, data, 256<<10)
	tr = peertest.Opentracker(t, probe.InfoHash)
	url := tr.HTTPURL
	if udp {
		url = tr.UDPURL
	}
	tpath, mi = makeTorrent(t, data, 256<<10, url)
	if mi.InfoHash != probe.InfoHash {
		t.Fatal("infohash changed with the tracker")
	}
	return data, tpath, mi, tr
}

func addAndWait(t *testing.T, n *node, mi *metainfo.MetaInfo, dir string, want engine.State) *engine.Session {
	t.Helper()
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, want, 60*time.Second)
	return s
}

func TestDownloadFromAria2(t *testing.T) {
	peertest.Require(t, "aria2c")
	data, tpath, mi, tr := trackedTorrent(t, "from-aria2", false)
	seed := peertest.Aria2(t, peertest.Aria2Opts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true})
	if err := seed.WaitDone(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	addAndWait(t, n, mi, n.dir, engine.StateSeeding) // aria2 found through the tracker
	sameTree(t, mi, filepath.Dir(data), n.dir)
}

func TestSeedToAria2(t *testing.T) {
	peertest.Require(t, "aria2c")
	data, tpath, mi, tr := trackedTorrent(t, "to-aria2", false)
	n := startNode(t, engine.Config{})
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	leech := peertest.Aria2(t, peertest.Aria2Opts{Torrent: tpath, Dir: out})
	if err := leech.WaitDone(120 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
	waitFor(t, "uploaded counter reaches the torrent size", 5*time.Second, func() bool {
		return s.Snapshot().Uploaded >= mi.TotalLength
	})
}

// Transmission ignores tracker peers on 127.x (its martian filter), so our
// side dials it in both directions.
func TestDownloadFromTransmission(t *testing.T) {
	peertest.Require(t, "transmission-cli")
	data := testData(t, "from-tr", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Transmission(t, peertest.TransmissionOpts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true})
	if err := seed.WaitDone(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(localPort(seed.Port)), "test")
	waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
}

func TestSeedToTransmission(t *testing.T) {
	peertest.Require(t, "transmission-cli")
	data := testData(t, "to-tr", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	n := startNode(t, engine.Config{})
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	out := t.TempDir()
	leech := peertest.Transmission(t, peertest.TransmissionOpts{Torrent: tpath, Dir: out})
	if err := leech.WaitListen(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(localPort(leech.Port)), "test")
	if err := leech.WaitDone(120 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
}

// TestUDPTrackerDiscovery: our node and a libtorrent seeder find each other
// only through opentracker's UDP side, and the tracker shows as working.
func TestUDPTrackerDiscovery(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data, tpath, mi, tr := trackedTorrent(t, "udp-tracker", true)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s := addAndWait(t, n, mi, n.dir, engine.StateSeeding)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	trs := s.Snapshot().Trackers
	if len(trs) != 1 || trs[0].URL != tr.UDPURL || trs[0].Status != "working" || trs[0].LastAnnounce.IsZero() {
		t.Fatalf("tracker status %+v", trs)
	}
}

func localPort(port int) netip.AddrPort {
	return netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))
}
