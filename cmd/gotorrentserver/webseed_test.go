package main

// A torrent whose only source is a web seed (BEP 19): a local HTTP server,
// no tracker, no peer. Both ways the daemon downloads, `get` and `serve`
// with the API, finish it with the bytes on disk.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// webSeedFixture serves a two-file folder over HTTP on 127.0.0.1 and
// returns a torrent of it whose only source is that server.
func webSeedFixture(t *testing.T) (raw []byte, mi *metainfo.MetaInfo, src string) {
	t.Helper()
	parent := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(parent)))
	t.Cleanup(srv.Close)
	// makeFolderTorrent writes the files; the torrent is made again with
	// the url-list, which it does not take.
	makeFolderTorrent(t, parent, "web only", nil, fileSpec{"a.bin", 1<<20 + 4321}, fileSpec{"b b.bin", 2<<20 + 99})
	raw, err := metainfo.Create(filepath.Join(parent, "web only"), metainfo.CreateOptions{PieceLength: 64 << 10, WebSeeds: []string{srv.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	if mi, err = metainfo.Parse(raw); err != nil {
		t.Fatal(err)
	}
	return raw, mi, filepath.Join(parent, "web only")
}

func sameFiles(t *testing.T, got, want string, names ...string) {
	t.Helper()
	for _, n := range names {
		a, err := os.ReadFile(filepath.Join(got, n))
		b, _ := os.ReadFile(filepath.Join(want, n))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s: %d bytes on disk (%v), want the %d served", n, len(a), err, len(b))
		}
	}
}

func TestGetFromWebSeedOnly(t *testing.T) {
	raw, mi, src := webSeedFixture(t)
	out := t.TempDir()
	stdout, stderr, code := runBinary(t, 60*time.Second, "get", "-o", out, "-listen", "127.0.0.1:0", writeTorrentFile(t, raw))
	if code != 0 || !strings.Contains(string(stdout), mi.InfoHash.String()+" complete") {
		t.Fatalf("get: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	sameFiles(t, filepath.Join(out, "web only"), src, "a.bin", "b b.bin")
}

func TestServeDownloadsFromWebSeedOnly(t *testing.T) {
	raw, mi, src := webSeedFixture(t)
	stateDir, downloads := t.TempDir(), t.TempDir()
	d := startServe(t, stateDir, downloads, freePort(t))
	d.addTorrent(t, "", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	sameFiles(t, filepath.Join(downloads, "web only"), src, "a.bin", "b b.bin")
	b, code := d.get("/torrentdata?infohash=" + mi.InfoHash.String())
	var td struct {
		Downloaded int64 `json:"downloaded"`
		WebSeeds   []struct {
			URL        string  `json:"url"`
			Status     string  `json:"status"`
			Downloaded int64   `json:"downloaded"`
			Error      *string `json:"error"`
		} `json:"webseeds"`
		Peers []any `json:"Peers"`
	}
	if err := json.Unmarshal(b, &td); code != 200 || err != nil {
		t.Fatalf("/torrentdata: %d %v: %s", code, err, b)
	}
	if len(td.WebSeeds) != 1 || td.WebSeeds[0].URL != mi.WebSeeds[0] || td.WebSeeds[0].Status != "working" ||
		td.WebSeeds[0].Downloaded != mi.TotalLength>>10 || td.WebSeeds[0].Error != nil ||
		td.Downloaded != mi.TotalLength>>10 || len(td.Peers) != 0 {
		t.Fatalf("/torrentdata after a web-seed-only download: %s", b)
	}
}
