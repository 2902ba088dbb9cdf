package netio

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/peertest"
)

// Encrypted interop: each real client runs with RC4 forced, our node with
// -encryption require, so a finished transfer went over MSE and RC4 on
// both sides; where our side dials, a wiretap also checks the BitTorrent
// handshake never crossed in the clear.

// requireNode is our node refusing anything but RC4.
func requireNode(t *testing.T) *node {
	return startNodeWith(t, engine.Config{}, Config{Encryption: EncryptionRequire})
}

// noneInClear fails t if any connection through tap began in plaintext or
// showed the protocol string in the clear.
func noneInClear(t *testing.T, tap *wiretap) {
	t.Helper()
	seen := tap.seen()
	if len(seen) == 0 {
		t.Fatal("no connection went through the wiretap")
	}
	for i, c := range seen {
		if c.first == 0x13 || c.clear {
			t.Fatalf("connection %d through the wiretap was plaintext: %+v", i, c)
		}
	}
}

func TestEncryptedDownloadFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-enc-src", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep", "--encrypt")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	tap := newWiretap(t, ltAddr(seed))
	n := requireNode(t)
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(tap.addr()), "test")
	waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	noneInClear(t, tap)
}

func TestEncryptedSeedToLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-enc-seed", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	n := requireNode(t)
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	tap := newWiretap(t, n.addr())
	out := t.TempDir()
	leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", out, "--peer", tap.addr().String(), "--encrypt")
	if _, err := leech.WaitLine("DONE", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
	waitFor(t, "uploaded counter reaches the torrent size", 5*time.Second, func() bool {
		return s.Snapshot().Uploaded >= mi.TotalLength
	})
	noneInClear(t, tap)
}

// A plaintext peer gets nothing from a node that requires encryption:
// libtorrent with encryption off dials it and is refused every time.
func TestRequireRefusesPlaintextLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-enc-refuse", []int{1 << 20})
	tpath, mi := makeTorrent(t, data, 64<<10)
	n := requireNode(t)
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	tap := newWiretap(t, n.addr())
	leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", t.TempDir(), "--peer", tap.addr().String(), "--plaintext")
	// libtorrent retries a refused peer; let it try a few times.
	waitFor(t, "libtorrent to dial twice", 30*time.Second, func() bool { return len(tap.begun()) >= 2 })
	for i, c := range tap.begun() {
		if c.first != 0x13 {
			t.Fatalf("connection %d: libtorrent did not dial in plaintext: %+v", i, c)
		}
	}
	sn := s.Snapshot()
	if sn.Uploaded != 0 || connected(sn) != 0 {
		t.Fatalf("a plaintext peer was served: uploaded %d, peers %+v", sn.Uploaded, sn.Peers)
	}
	if strings.Contains("\n"+leech.Output(), "\nDONE") {
		t.Fatal("the plaintext leecher completed")
	}
}

func connected(sn *engine.Snapshot) int {
	n := 0
	for _, p := range sn.Peers {
		if p.Connected {
			n++
		}
	}
	return n
}

// Transmission with -er (RC4 required) seeding to us; our side dials it,
// as Transmission ignores loopback peers from trackers.
func TestEncryptedDownloadFromTransmission(t *testing.T) {
	peertest.Require(t, "transmission-cli")
	data := testData(t, "from-tr-enc", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Transmission(t, peertest.TransmissionOpts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true, EncryptionRequired: true})
	if err := seed.WaitDone(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	tap := newWiretap(t, localPort(seed.Port))
	n := requireNode(t)
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(tap.addr()), "test")
	waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	noneInClear(t, tap)
}

// Transmission with -er downloading from us.
func TestEncryptedSeedToTransmission(t *testing.T) {
	peertest.Require(t, "transmission-cli")
	data := testData(t, "to-tr-enc", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	n := requireNode(t)
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	out := t.TempDir()
	leech := peertest.Transmission(t, peertest.TransmissionOpts{Torrent: tpath, Dir: out, EncryptionRequired: true})
	if err := leech.WaitListen(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	tap := newWiretap(t, localPort(leech.Port))
	s.AddPeers(addrs(tap.addr()), "test")
	if err := leech.WaitDone(120 * time.Second); err != nil {
		t.Fatal(err)
	}
	leech.Stop() // it may hold written blocks in its cache until it stops
	sameTree(t, mi, filepath.Dir(data), out)
	noneInClear(t, tap)
}

// aria2 with RC4 required finds us through the tracker and dials us, and
// we dial it back; both ways are MSE, and aria2 downloads everything.
func TestEncryptedSeedToAria2(t *testing.T) {
	peertest.Require(t, "aria2c")
	data, tpath, mi, tr := trackedTorrent(t, "to-aria2-enc", false)
	n := requireNode(t)
	s := addAndWait(t, n, mi, filepath.Dir(data), engine.StateSeeding)
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	leech := peertest.Aria2(t, peertest.Aria2Opts{Torrent: tpath, Dir: out,
		Extra: []string{"--bt-require-crypto=true", "--bt-min-crypto-level=arc4"}})
	if err := leech.WaitDone(120 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
	waitFor(t, "uploaded counter reaches the torrent size", 5*time.Second, func() bool {
		return s.Snapshot().Uploaded >= mi.TotalLength
	})
}

// aria2 with RC4 required seeding; we find it through the tracker and
// dial it.
func TestEncryptedDownloadFromAria2(t *testing.T) {
	peertest.Require(t, "aria2c")
	data, tpath, mi, tr := trackedTorrent(t, "from-aria2-enc", false)
	seed := peertest.Aria2(t, peertest.Aria2Opts{Torrent: tpath, Dir: filepath.Dir(data), Seed: true,
		Extra: []string{"--bt-require-crypto=true", "--bt-min-crypto-level=arc4"}})
	if err := seed.WaitDone(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	n := requireNode(t)
	addAndWait(t, n, mi, n.dir, engine.StateSeeding)
	sameTree(t, mi, filepath.Dir(data), n.dir)
}
