package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// swarmFixture: data, a torrent announcing to opentracker, and a
// rate-limited seeder (our own `get -seed`), so a download takes a while.
func swarmFixture(t *testing.T, mib int, upKiB int) (string, *metainfo.MetaInfo, []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "payload")
	os.MkdirAll(src, 0o755)
	data := make([]byte, mib<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	os.WriteFile(filepath.Join(src, "a.bin"), data[:len(data)/3], 0o644)
	os.WriteFile(filepath.Join(src, "b.bin"), data[len(data)/3:], 0o644)
	probe, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	pmi, _ := metainfo.Parse(probe)
	tr := peertest.Opentracker(t, pmi.InfoHash)
	raw, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: 64 << 10, Trackers: [][]string{{tr.HTTPURL}}})
	if err != nil {
		t.Fatal(err)
	}
	mi, _ := metainfo.Parse(raw)
	tfile := filepath.Join(t.TempDir(), "p.torrent")
	os.WriteFile(tfile, raw, 0o644)
	bin, _ := binary()
	seed := peertest.Start(t, bin, "get", "-seed", "-listen", "127.0.0.1:0", "-max-up", fmt.Sprint(upKiB),
		"-o", filepath.Dir(src), tfile)
	if _, err := seed.WaitMatch("complete", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(src), mi, raw
}

// TestKillAndRestart: add over the API, download part, kill -9, restart:
// the torrent comes back downloading without a recheck of what it had,
// finishes, and the bytes are identical.
func TestKillAndRestart(t *testing.T) {
	peertest.Require(t, "opentracker")
	srcRoot, mi, raw := swarmFixture(t, 12, 1024)
	stateDir, downloads := t.TempDir(), t.TempDir()
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	if fi, err := os.Stat(filepath.Join(stateDir, "api-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated token file: %v %v", fi, err)
	}
	if b, code := d.do("POST", "/addtorrentfile?path=dl&maxup=77", raw); code != 200 {
		t.Fatalf("add: %d %s", code, b)
	}
	var before float64
	deadline := time.Now().Add(60 * time.Second)
	for before < 0.3 {
		td, _ := d.info(mi.InfoHash)
		before = td.Progress
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v\n%s", td, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3500 * time.Millisecond) // let a resume record cover the progress seen
	d.kill()

	d2 := startServe(t, stateDir, downloads, port)
	first, code := d2.info(mi.InfoHash)
	if code != 200 {
		t.Fatalf("torrent lost across kill -9:\n%s", d2.log.String())
	}
	if first.State == "checking" || first.Rechecks != 0 || first.Progress < before {
		t.Fatalf("after restart: state %s progress %.2f, before the kill %.2f: intact pieces were not trusted",
			first.State, first.Progress, before)
	}
	if first.MaxUp != 77 {
		t.Fatalf("maxup %d after restart, want 77", first.MaxUp)
	}
	deadline = time.Now().Add(90 * time.Second)
	for {
		td, _ := d2.info(mi.InfoHash)
		if td.State == "checking" || td.Rechecks != 0 {
			t.Fatal("restarted torrent went through a recheck")
		}
		if td.State == "seeding" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not finish: %+v", td)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"a.bin", "b.bin"} {
		want, _ := os.ReadFile(filepath.Join(srcRoot, "payload", name))
		got, err := os.ReadFile(filepath.Join(downloads, "dl", "payload", name))
		if err != nil || !bytes.Equal(want, got) {
			t.Fatalf("%s differs after restart: %v", name, err)
		}
	}
}

// TestGracefulStopKeepsState: SIGTERM exits within 5 s, and a stopped
// torrent with its limits comes back stopped with the same limits.
func TestGracefulStopKeepsState(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.bin"), bytes.Repeat([]byte("x"), 100000), 0o644)
	raw, _ := metainfo.Create(filepath.Join(dir, "f.bin"), metainfo.CreateOptions{})
	mi, _ := metainfo.Parse(raw)
	stateDir, downloads := t.TempDir(), t.TempDir()
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	if _, code := d.do("POST", "/addtorrentfile?start=false&maxdown=12&maxup=34", raw); code != 200 {
		t.Fatal("add failed")
	}
	start := time.Now()
	d.signal(syscall.SIGTERM)
	code, ok := d.exitWithin(6 * time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM: exited %v with status %d (want 0 within 5 s)\n%s", ok, code, d.log.String())
	}
	t.Logf("stopped in %v", time.Since(start))
	d2 := startServe(t, stateDir, downloads, port)
	td, code := d2.info(mi.InfoHash)
	if code != 200 || td.State != "stopped" || td.MaxDown != 12 || td.MaxUp != 34 {
		t.Fatalf("after restart: %+v (status %d)", td, code)
	}
}

// TestChangedFileIsRechecked: a seeding torrent restarts without a recheck,
// unless one of its files changed while the daemon was down.
func TestChangedFileIsRechecked(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	src := filepath.Join(downloads, "keep", "f.bin")
	os.MkdirAll(filepath.Dir(src), 0o755)
	os.WriteFile(src, bytes.Repeat([]byte("seed"), 300000), 0o644)
	raw, _ := metainfo.Create(src, metainfo.CreateOptions{})
	mi, _ := metainfo.Parse(raw)
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	if _, code := d.do("POST", "/addtorrentfile?path=keep", raw); code != 200 {
		t.Fatal("add failed")
	}
	if td := d.waitSeeding(t, mi.InfoHash); td.Rechecks != 1 {
		t.Fatalf("existing data: %d rechecks, want 1", td.Rechecks)
	}
	d.stop(t)
	d = startServe(t, stateDir, downloads, port)
	if td := d.waitSeeding(t, mi.InfoHash); td.Rechecks != 0 {
		t.Fatalf("unchanged data rechecked on restart (%d)", td.Rechecks)
	}
	d.stop(t)
	later := time.Now().Add(time.Hour)
	os.Chtimes(src, later, later)
	d = startServe(t, stateDir, downloads, port)
	if td := d.waitSeeding(t, mi.InfoHash); td.Rechecks != 1 {
		t.Fatalf("changed file: %d rechecks, want 1", td.Rechecks)
	}
}

// TestInfoFetchMagnet: `info -fetch MAGNET`, run as the real binary, gets
// the metadata from the peer named in x.pe and prints the whole torrent as
// exactly one JSON document on stdout (in-process, gnet once printed its
// banner on os.Stdout, which run's stdout argument did not catch).
func TestInfoFetchMagnet(t *testing.T) {
	_, mi, seed := ltSeedFolder(t, "m", "one.bin", 'm', 700000)
	mag := (&metainfo.Magnet{InfoHash: mi.InfoHash, Peers: []string{fmt.Sprintf("127.0.0.1:%d", seed.Port)}}).String()
	stdout, stderr, code := runBinary(t, 60*time.Second, "info", "-fetch", "-json", "-timeout", "30s", mag)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got infoJSON
	decodeOneJSON(t, stdout, &got)
	if got.InfoHash != mi.InfoHash.String() || got.TotalSize != 700000 || len(got.Files) != 1 || got.Files[0].Path != "m/one.bin" {
		t.Fatalf("fetched info: %+v", got)
	}
}

// TestMagnetMetadataSurvivesRestart: a magnet added over the API fetches
// its metadata once; after a restart the torrent is back with its real name
// and size without going through the metadata state again.
func TestMagnetMetadataSurvivesRestart(t *testing.T) {
	src, mi, seed := ltSeedFolder(t, "mm", "x.bin", 'q', 300000)
	stateDir, downloads := t.TempDir(), t.TempDir()
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	mag := (&metainfo.Magnet{InfoHash: mi.InfoHash, Name: "dn-name", Peers: []string{fmt.Sprintf("127.0.0.1:%d", seed.Port)}}).String()
	body, _ := json.Marshal(map[string]any{"url": mag, "targetdir": "mags", "maxdown": 0, "maxup": 0})
	if b, code := d.do("POST", "/addmagnet", body); code != 200 {
		t.Fatalf("addmagnet: %d %s", code, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		td, _ := d.info(mi.InfoHash)
		if td.State == "seeding" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("magnet did not complete: %+v", td)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.kill()
	seed.Stop() // nobody left to fetch metadata from
	d2 := startServe(t, stateDir, downloads, port)
	b, _ := d2.get("/torrentdata?infohash=" + mi.InfoHash.String())
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["name"] != "mm" || got["size"] != float64(300000) || got["state"] == "metadata" {
		t.Fatalf("after restart: name %v size %v state %v", got["name"], got["size"], got["state"])
	}
	want, _ := os.ReadFile(filepath.Join(src, "x.bin"))
	have, err := os.ReadFile(filepath.Join(downloads, "mags", "mm", "x.bin"))
	if err != nil || !bytes.Equal(want, have) {
		t.Fatalf("downloaded bytes differ: %v", err)
	}
}

// ltSeedFolder makes a one-file folder torrent (16 KiB pieces) and has a
// python3-libtorrent peer seed it; it skips when libtorrent is missing.
func ltSeedFolder(t *testing.T, dir, file string, fill byte, size int) (string, *metainfo.MetaInfo, *peertest.Proc) {
	t.Helper()
	peertest.Require(t, "libtorrent")
	src := filepath.Join(t.TempDir(), dir)
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, file), bytes.Repeat([]byte{fill}, size), 0o644)
	raw, _ := metainfo.Create(src, metainfo.CreateOptions{PieceLength: 16 << 10})
	mi, _ := metainfo.Parse(raw)
	tfile := filepath.Join(t.TempDir(), dir+".torrent")
	os.WriteFile(tfile, raw, 0o644)
	seed := peertest.Libtorrent(t, "--torrent", tfile, "--dir", filepath.Dir(src), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return src, mi, seed
}
