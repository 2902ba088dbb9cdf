package httpapi

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// /torrentdata shows the torrent's web seeds beside its trackers: one that
// served the whole torrent, and one answering 500, backing off.
func TestTorrentDataWebSeeds(t *testing.T) {
	e := newEnv(t, nil)
	src := t.TempDir()
	folder := makeData(t, src, "ws", 3, 40<<10, 5000)
	// The good server answers once the bad one has been asked (both are
	// at once: the second races the first in endgame), so the bad one's
	// 500 is never lost in a finished torrent's quiet.
	asked := make(chan struct{})
	var once sync.Once
	files := http.FileServer(http.Dir(src))
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-asked:
		case <-time.After(5 * time.Second):
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(good.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		once.Do(func() { close(asked) })
	}))
	t.Cleanup(bad.Close)
	raw, err := metainfo.Create(folder, metainfo.CreateOptions{PieceLength: 16 << 10, WebSeeds: []string{good.URL + "/", bad.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	ih := e.add(raw, nil)
	m := e.waitTorrent(ih, "seeding from the web seed, the other backing off", func(m map[string]any) bool {
		ws, _ := m["webseeds"].([]any)
		return m["state"] == "seeding" && len(ws) == 2 && ws[1].(map[string]any)["status"] == "backoff"
	})
	hasKeys(t, "torrentdata", m, specSessionKeys)
	ws := m["webseeds"].([]any)
	keys := []string{"url", "status", "downloaded", "downrate", "error", "next_retry", "failures"}
	g, b := ws[0].(map[string]any), ws[1].(map[string]any)
	hasKeys(t, "web seed", g, keys)
	hasKeys(t, "web seed", b, keys)
	if g["url"] != good.URL+"/" || g["status"] != "working" || g["downloaded"] != float64((40<<10+5000)>>10) ||
		g["error"] != nil || g["next_retry"] != nil || g["failures"] != float64(0) {
		t.Errorf("working web seed: %v", g)
	}
	if b["url"] != bad.URL+"/" || b["downloaded"] != float64(0) || b["failures"] != float64(1) {
		t.Errorf("failing web seed: %v", b)
	}
	if msg, _ := b["error"].(string); msg != "webseed: HTTP 500 Internal Server Error" {
		t.Errorf("failing web seed's error %q", msg)
	}
	if next, _ := b["next_retry"].(string); next == "" {
		t.Errorf("failing web seed has no next_retry: %v", b)
	} else if _, err := time.Parse(time.RFC3339, next); err != nil {
		t.Errorf("next_retry: %v", err)
	}
	all := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json
	if s := all["sessions"].([]any)[0].(map[string]any); len(s["webseeds"].([]any)) != 2 {
		t.Errorf("/alldata session's webseeds: %v", s["webseeds"])
	}
	// A torrent without a url-list shows an empty list, not null.
	plain, _ := newTorrent(t, "plain", 4)
	if ws, ok := e.torrent(e.add(plain, nil))["webseeds"].([]any); !ok || len(ws) != 0 {
		t.Errorf("webseeds of a torrent without a url-list: %#v", ws)
	}
}
