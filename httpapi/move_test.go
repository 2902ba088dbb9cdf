package httpapi

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/metainfo"
)

// /movetorrent moves the data to a folder given relative to the root; the
// torrent seeds again from there, its path the new folder, with no
// recheck. Folders outside the root, a destination holding the torrent's
// name and unknown torrents are refused.
func TestMoveTorrent(t *testing.T) {
	e := newEnv(t, nil)
	ih, folder := seedInRoot(t, e, "mv")
	want, _ := os.ReadFile(filepath.Join(folder, "f1.bin"))
	q := func(path string) string {
		return "/movetorrent?" + url.Values{"infohash": {ih.String()}, "path": {path}}.Encode()
	}
	r := e.must(e.do("GET", q("shelf/a"), nil), http.StatusOK)
	if r.json["infohash"] != ih.String() {
		t.Fatalf("answer %s", r.raw)
	}
	real, _ := filepath.EvalSymlinks(e.root)
	dest := filepath.Join(real, "shelf", "a")
	m := e.waitTorrent(ih, "seeding from the new folder", func(m map[string]any) bool {
		return m["state"] == "seeding" && m["path"] == dest
	})
	if m["rechecks"].(float64) != 1 {
		t.Fatalf("rechecks %v: the move rechecked", m["rechecks"])
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "mv", "f1.bin")); !bytes.Equal(got, want) {
		t.Fatal("moved file differs")
	}
	if _, err := os.Stat(folder); !os.IsNotExist(err) {
		t.Fatalf("old folder still there: %v", err)
	}

	for _, bad := range []string{"/etc", "../outside", "shelf/../../outside"} {
		e.must(e.do("GET", q(bad), nil), http.StatusBadRequest)
	}
	e.must(e.do("GET", "/movetorrent?infohash="+ih.String(), nil), http.StatusBadRequest)
	os.MkdirAll(filepath.Join(e.root, "taken", "mv"), 0o755)
	os.WriteFile(filepath.Join(e.root, "taken", "mv", "f0.bin"), []byte("theirs"), 0o644)
	r = e.must(e.do("GET", q(filepath.Join(e.root, "taken")), nil), http.StatusConflict)
	if b, _ := os.ReadFile(filepath.Join(e.root, "taken", "mv", "f0.bin")); string(b) != "theirs" {
		t.Fatalf("their file changed; answer %s", r.raw)
	}
	e.must(e.do("GET", "/movetorrent?path=x&infohash="+metainfo.Hash{9}.String(), nil), http.StatusNotFound)
	e.must(e.do("GET", q("shelf/a"), nil), http.StatusOK) // where it is: nothing to do
	if m := e.torrent(ih); m["state"] != "seeding" || m["path"] != dest {
		t.Fatalf("after refusals: state %v path %v", m["state"], m["path"])
	}
}
