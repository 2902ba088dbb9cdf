package netio

import (
	"fmt"
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
	s, err := n.client.AddMagnet(m, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
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

// TestMagnetFromTransmission: metadata and data from a transmission seeder
// we dial (x.pe), since it ignores tracker peers on loopback.
func TestMagnetFromTransmission(t *testing.T) {
	peertest.Require(t, "transmission-cli")
	data := testData(t, "mag-tr", []int{3<<20 + 5, 1<<20 + 7})
	tpath, mi := makeTorrent(t, data, 32<<10)
	seed := peertest.Transmission(t, peertest.TransmissionOpts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true})
	if err := seed.WaitDone(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	m := &metainfo.Magnet{InfoHash: mi.InfoHash, Peers: []string{localPort(seed.Port).String()}}
	s, err := n.client.AddMagnet(m, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 90*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
}

// TestMagnetWithAria2: metadata from an aria2 seeder found through the
// magnet's tracker, and metadata served to aria2 downloading by magnet.
func TestMagnetWithAria2(t *testing.T) {
	peertest.Require(t, "aria2c")
	t.Run("fetch", func(t *testing.T) {
		data, tpath, mi, tr := trackedTorrent(t, "mag-aria-src", false)
		seed := peertest.Aria2(t, peertest.Aria2Opts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true})
		if err := seed.WaitDone(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, engine.Config{})
		s, err := n.client.AddMagnet(&metainfo.Magnet{InfoHash: mi.InfoHash, Trackers: []string{tr.HTTPURL}},
			engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, s, engine.StateSeeding, 120*time.Second)
		sameTree(t, mi, filepath.Dir(data), n.dir)
	})
	t.Run("serve", func(t *testing.T) {
		data, _, mi, tr := trackedTorrent(t, "mag-aria-dst", false)
		n := startNode(t, engine.Config{})
		addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
		if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		mag := (&metainfo.Magnet{InfoHash: mi.InfoHash, Trackers: []string{tr.HTTPURL}}).String()
		leech := peertest.Start(t, "aria2c", "--no-conf=true", "--enable-dht=false", "--enable-dht6=false",
			"--bt-enable-lpd=false", "--enable-peer-exchange=false", "--interface=127.0.0.1",
			fmt.Sprintf("--listen-port=%d", peertest.FreePort(t)), "--disable-ipv6=true",
			"--bt-require-crypto=false", "--bt-min-crypto-level=plain", "--bt-tracker-interval=2",
			"--seed-time=0", "--file-allocation=none", "--bt-save-metadata=false", "--summary-interval=1",
			"--console-log-level=notice", "--stop=120", "--dir="+out, mag)
		if err := leech.Wait(120 * time.Second); err != nil {
			t.Fatalf("aria2c: %v\n%s", err, leech.Output())
		}
		sameTree(t, mi, filepath.Dir(data), out)
	})
}

// TestPexLearnsThirdPeer: libtorrent seeder A has two leechers: C (one of
// our nodes, kept slow by a download limit so it stays connected) and N. N
// knows only A; A's ut_pex message tells it about C, and N connects to C.
func TestPexLearnsThirdPeer(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "pex", []int{8<<20 + 1})
	tpath, mi := makeTorrent(t, data, 32<<10)
	a := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep", "--pex")
	if _, err := a.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, engine.Config{})
	cs, err := c.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: c.dir, MaxDown: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	cs.AddPeers(addrs(ltAddr(a)), "test")
	waitFor(t, "C downloading from A", 20*time.Second, func() bool { return cs.Snapshot().Downloaded > 0 })

	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir, MaxDown: 64 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(ltAddr(a)), "test")
	// Both learn of each other from A, so either may dial the other: look
	// for C by its peer id, whichever way the connection goes.
	waitFor(t, "C learned through A's PEX and connected", 100*time.Second, func() bool {
		for _, p := range s.Snapshot().Peers {
			if p.PeerID == c.client.PeerID() && p.Connected {
				return true
			}
		}
		return false
	})
}
