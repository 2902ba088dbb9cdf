package peertest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// These tests run the real clients against each other, without our
// daemon, so that a later interop failure points at the daemon rather than
// at this harness. Each moves an 8 MiB, three-file torrent with 256 KiB
// pieces (the last one 121 bytes long, pieces straddling file boundaries)
// and compares every byte received with the source.

// payloadFiles are the torrent's files below its root folder "payload".
var payloadFiles = []struct {
	path string
	size int
}{
	{"a.bin", 3<<20 + 123},
	{"sub/b.bin", 4<<20 - 7},
	{"sub/deeper/c.txt", 1<<20 + 5},
}

// makePayload writes the files under <tmp>/payload from a seeded random
// stream and returns <tmp>, the folder a seeder is given.
func makePayload(t *testing.T, seed uint64) string {
	t.Helper()
	parent := t.TempDir()
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	for _, f := range payloadFiles {
		b := make([]byte, f.size)
		rng.Read(b)
		path := filepath.Join(parent, "payload", filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return parent
}

// makeTorrent writes a .torrent of <parent>/payload announcing to
// announce (none if empty); the infohash does not depend on it.
func makeTorrent(t *testing.T, parent, announce string) (string, *metainfo.MetaInfo) {
	t.Helper()
	opt := metainfo.CreateOptions{PieceLength: 256 << 10, Date: time.Unix(1700000000, 0)}
	if announce != "" {
		opt.Trackers = [][]string{{announce}}
	}
	b, err := metainfo.Create(filepath.Join(parent, "payload"), opt)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.Files) != len(payloadFiles) || mi.PieceLength != 256<<10 || mi.NumPieces() != 33 {
		t.Fatalf("torrent: %d files, piece length %d, %d pieces; want %d, 262144, 33",
			len(mi.Files), mi.PieceLength, mi.NumPieces(), len(payloadFiles))
	}
	path := filepath.Join(t.TempDir(), "payload.torrent")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, mi
}

// sameFiles fails t unless every file of mi under gotParent has the bytes
// of the same file under wantParent.
func sameFiles(t *testing.T, mi *metainfo.MetaInfo, wantParent, gotParent string) {
	t.Helper()
	for _, f := range mi.Files {
		rel := filepath.Join(append([]string{mi.Name}, f.Path...)...)
		want, err := os.ReadFile(filepath.Join(wantParent, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(gotParent, rel))
		if err != nil {
			t.Errorf("received %s: %v", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("received %s differs: %d bytes, want %d (first difference at %d)", rel, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// trackedTorrent starts an opentracker serving the payload's torrent and
// returns the tracker and a .torrent announcing to its HTTP URL.
func trackedTorrent(t *testing.T, src string) (*Tracker, string, *metainfo.MetaInfo) {
	t.Helper()
	_, mi := makeTorrent(t, src, "")
	tr := Opentracker(t, mi.InfoHash)
	path, mi2 := makeTorrent(t, src, tr.HTTPURL)
	if mi2.InfoHash != mi.InfoHash {
		t.Fatalf("infohash changed with the announce URL: %s vs %s", mi2.InfoHash, mi.InfoHash)
	}
	return tr, path, mi2
}

const waitDone = 25 * time.Second

func TestLibtorrentSeedsAria2Leeches(t *testing.T) {
	t.Parallel()
	Require(t, "libtorrent", "aria2c")
	src := makePayload(t, 1)
	tr, torrent, mi := trackedTorrent(t, src)

	// --plaintext: aria2's first, obfuscated attempt is refused, so this
	// also proves its fallback to the plain handshake that our daemon needs.
	seed := Libtorrent(t, "--torrent", torrent, "--dir", src, "--keep", "--plaintext", "--timeout", "60")
	if err := seed.WaitDone(waitDone); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	leech := Aria2(t, Aria2Opts{Torrent: torrent, Dir: out, Timeout: time.Minute})
	if err := leech.WaitDone(waitDone); err != nil {
		t.Fatal(err)
	}
	// Without KeepSeeding aria2 exits 0 once the files are complete.
	if err := leech.Wait(10 * time.Second); err != nil {
		t.Fatalf("aria2c: %v; output:\n%s", err, leech.Output())
	}
	sameFiles(t, mi, src, out)
}

func TestAria2SeedsLibtorrentLeeches(t *testing.T) {
	t.Parallel()
	Require(t, "libtorrent", "aria2c")
	src := makePayload(t, 2)
	tr, torrent, mi := trackedTorrent(t, src)

	seed := Aria2(t, Aria2Opts{Torrent: torrent, Dir: src, Seed: true, Timeout: time.Minute})
	if err := seed.WaitDone(waitDone); err != nil {
		t.Fatal(err)
	}
	// libtorrent would not re-announce for 30 minutes: the seeder must be
	// listed before it first asks.
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	leech := Libtorrent(t, "--torrent", torrent, "--dir", out, "--plaintext", "--timeout", "60")
	if err := leech.WaitDone(waitDone); err != nil {
		t.Fatalf("%v\naria2c output:\n%s", err, seed.Output())
	}
	if err := leech.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, mi, src, out)
}

func TestLibtorrentSeedsTransmissionLeeches(t *testing.T) {
	t.Parallel()
	Require(t, "libtorrent", "transmission-cli")
	src := makePayload(t, 3)
	// No tracker: transmission would drop the 127.0.0.1 peers it returns.
	torrent, mi := makeTorrent(t, src, "")
	out := t.TempDir()
	leech := Transmission(t, TransmissionOpts{Torrent: torrent, Dir: out, Timeout: time.Minute})
	if err := leech.WaitListen(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The seeder dials transmission, in plaintext as our daemon will.
	seed := Libtorrent(t, "--torrent", torrent, "--dir", src, "--keep", "--plaintext", "--timeout", "60",
		"--peer", fmt.Sprintf("127.0.0.1:%d", leech.Port))
	if err := leech.WaitDone(waitDone); err != nil {
		t.Fatalf("%v\nlibtorrent output:\n%s", err, seed.Output())
	}
	// transmission may still hold written blocks in its cache; it flushes
	// them when it shuts down.
	leech.Stop()
	sameFiles(t, mi, src, out)
}

func TestTransmissionSeedsLibtorrentLeeches(t *testing.T) {
	t.Parallel()
	Require(t, "libtorrent", "transmission-cli")
	src := makePayload(t, 4)
	torrent, mi := makeTorrent(t, src, "")
	seed := Transmission(t, TransmissionOpts{Torrent: torrent, Dir: src, Seed: true, Timeout: time.Minute})
	if err := seed.WaitDone(waitDone); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	leech := Libtorrent(t, "--torrent", torrent, "--dir", out, "--plaintext", "--timeout", "60",
		"--peer", fmt.Sprintf("127.0.0.1:%d", seed.Port))
	if err := leech.WaitDone(waitDone); err != nil {
		t.Fatalf("%v\ntransmission output:\n%s", err, seed.Output())
	}
	if err := leech.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, mi, src, out)
}
