package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// moveFiles is a multi-file torrent's content for the move tests.
var moveFiles = []fileSpec{{"a.bin", 300000}, {"b.bin", 1}, {"c.bin", 450123}}

// torrentPath reads the torrent's folder from /torrentdata.
func torrentPath(t *testing.T, d *daemonProc, ih metainfo.Hash) string {
	t.Helper()
	b, code := d.get("/torrentdata?infohash=" + ih.String())
	var m map[string]any
	json.Unmarshal(b, &m)
	p, _ := m["path"].(string)
	if code != 200 {
		t.Fatalf("/torrentdata: %d %s", code, b)
	}
	return p
}

func sameMoveFiles(t *testing.T, want, got string) {
	t.Helper()
	for _, f := range moveFiles {
		w, _ := os.ReadFile(filepath.Join(want, f.name))
		g, err := os.ReadFile(filepath.Join(got, f.name))
		if err != nil || !bytes.Equal(w, g) {
			t.Fatalf("%s in %s differs from the original: %v", f.name, got, err)
		}
	}
}

func realDir(t *testing.T, dir string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMoveAndSeedToLibtorrent: a multi-file torrent downloaded from a
// libtorrent seed is moved over the API; its files are at the new folder
// byte for byte and gone from the old, it seeds again, a fresh libtorrent
// leecher downloads it from us alone, and after a kill -9 and restart it
// seeds from the new folder without a recheck.
func TestMoveAndSeedToLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	src := t.TempDir()
	raw, mi := makeFolderTorrent(t, src, "payload", nil, moveFiles...)
	tfile := writeTorrentFile(t, raw)
	stateDir, downloads := t.TempDir(), t.TempDir()
	apiPort, peerPort := freePort(t), freePort(t)
	peerAddr := fmt.Sprintf("127.0.0.1:%d", peerPort)
	d := startServe(t, stateDir, downloads, apiPort, "-peer-addr", peerAddr)
	d.addTorrent(t, "path=dl", raw, mi.InfoHash)
	seed := peertest.Libtorrent(t, "--torrent", tfile, "--dir", src, "--keep", "--peer", peerAddr)
	d.waitSeeding(t, mi.InfoHash)
	seed.Stop() // from here on we are the only seed

	root := realDir(t, downloads)
	old, dest := filepath.Join(root, "dl"), filepath.Join(root, "archive", "2024")
	if got := torrentPath(t, d, mi.InfoHash); got != old {
		t.Fatalf("path %q, want %q", got, old)
	}
	b, code := d.get("/movetorrent?" + url.Values{"infohash": {mi.InfoHash.String()}, "path": {"archive/2024"}}.Encode())
	var ok okJSON
	json.Unmarshal(b, &ok)
	if code != 200 || ok.InfoHash != mi.InfoHash.String() {
		t.Fatalf("/movetorrent: %d %s", code, b)
	}
	d.waitFor(t, mi.InfoHash, "seeding from the new folder", 60*time.Second, func(td torrentJSON) bool {
		return td.State == "seeding" && torrentPath(t, d, mi.InfoHash) == dest
	})
	sameMoveFiles(t, filepath.Join(src, "payload"), filepath.Join(dest, "payload"))
	if names := dirNames(t, old); len(names) != 0 {
		t.Fatalf("left in the old folder: %v", names)
	}

	leech := t.TempDir()
	lt := peertest.Libtorrent(t, "--torrent", tfile, "--dir", leech, "--peer", peerAddr)
	if err := lt.WaitDone(60 * time.Second); err != nil {
		t.Fatalf("libtorrent leecher: %v\n%s", err, d.log.String())
	}
	sameMoveFiles(t, filepath.Join(src, "payload"), filepath.Join(leech, "payload"))

	d.kill()
	d2 := startServe(t, stateDir, downloads, apiPort, "-peer-addr", peerAddr)
	td := d2.waitFor(t, mi.InfoHash, "seeding after the restart", 30*time.Second, func(td torrentJSON) bool {
		return td.State == "seeding" || td.State == "checking" || td.State == "error"
	})
	if td.State != "seeding" || td.Rechecks != 0 {
		t.Fatalf("after restart: state %s, rechecks %d, error %s", td.State, td.Rechecks, td.errText())
	}
	if got := torrentPath(t, d2, mi.InfoHash); got != dest {
		t.Fatalf("path after restart %q, want %q", got, dest)
	}
}

// TestMoveFinishedAfterCrash: a daemon killed in the middle of a move left
// a record with move_to, one file already at the destination and the rest
// at the source; the next start-up finishes the move before the torrent
// starts, and it seeds from the destination without a recheck.
func TestMoveFinishedAfterCrash(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	root := realDir(t, downloads)
	raw, mi := makeFolderTorrent(t, filepath.Join(root, "dl"), "payload", nil, moveFiles...)
	orig := filepath.Join(t.TempDir(), "orig")
	os.CopyFS(orig, os.DirFS(filepath.Join(root, "dl", "payload")))
	apiPort := freePort(t)
	d := startServe(t, stateDir, downloads, apiPort)
	d.addTorrent(t, "path=dl", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	d.stop(t)

	// What a kill -9 part way through leaves: the intent, and a.bin moved.
	dest := filepath.Join(root, "moved")
	path := filepath.Join(stateDir, mi.InfoHash.String()+".resume")
	b, _ := os.ReadFile(path)
	var rec map[string]json.RawMessage // raw: nanosecond times must not pass through float64
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["move_to"], _ = json.Marshal(dest)
	b, _ = json.Marshal(rec)
	os.WriteFile(path, b, 0o600)
	os.MkdirAll(filepath.Join(dest, "payload"), 0o755)
	if err := os.Rename(filepath.Join(root, "dl", "payload", "a.bin"), filepath.Join(dest, "payload", "a.bin")); err != nil {
		t.Fatal(err)
	}

	d2 := startServe(t, stateDir, downloads, apiPort)
	td := d2.waitFor(t, mi.InfoHash, "seeding after the restart", 30*time.Second, func(td torrentJSON) bool {
		return td.State == "seeding" || td.State == "checking" || td.State == "error"
	})
	if td.State != "seeding" || td.Rechecks != 0 {
		t.Fatalf("after restart: state %s, rechecks %d, error %s", td.State, td.Rechecks, td.errText())
	}
	if got := torrentPath(t, d2, mi.InfoHash); got != dest {
		t.Fatalf("path %q, want %q", got, dest)
	}
	sameMoveFiles(t, orig, filepath.Join(dest, "payload"))
	if names := dirNames(t, filepath.Join(root, "dl")); len(names) != 0 {
		t.Fatalf("left in the old folder: %v", names)
	}
	b, _ = os.ReadFile(path)
	var after struct {
		Dir    string  `json:"dir"`
		MoveTo *string `json:"move_to"`
	}
	json.Unmarshal(b, &after)
	if after.Dir != dest || after.MoveTo != nil {
		t.Fatalf("record after the restart: %s", b)
	}
}
