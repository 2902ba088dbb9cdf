package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/webseed"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// webServer is a web seed on 127.0.0.1: it serves files by URL path with
// Range support, and counts what it was asked. hook, when set, answers
// first (a fault). Safe for concurrent use.
type webServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	hook     func(w http.ResponseWriter, r *http.Request) bool
	requests atomic.Int64
	active   atomic.Int64
	peak     atomic.Int64
}

func newWebServer(t *testing.T) *webServer {
	ws := &webServer{files: map[string][]byte{}}
	ws.srv = httptest.NewServer(http.HandlerFunc(ws.serve))
	t.Cleanup(ws.srv.Close)
	return ws
}

func (ws *webServer) serve(w http.ResponseWriter, r *http.Request) {
	ws.requests.Add(1)
	n := ws.active.Add(1)
	defer ws.active.Add(-1)
	for {
		p := ws.peak.Load()
		if n <= p || ws.peak.CompareAndSwap(p, n) {
			break
		}
	}
	ws.mu.Lock()
	hook, b, ok := ws.hook, ws.files[r.URL.Path], ws.files[r.URL.Path] != nil
	ws.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (ws *webServer) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	ws.mu.Lock()
	ws.hook = h
	ws.mu.Unlock()
}

// webTorrent writes files (name -> size) under a folder, makes a torrent
// of them with 64 KiB pieces whose url-list is ws, and has ws serve them.
// With one file the torrent is a single-file one.
func webTorrent(t *testing.T, ws *webServer, names []string, sizes []int) (*metainfo.MetaInfo, map[string][]byte) {
	t.Helper()
	src := t.TempDir()
	data := map[string][]byte{}
	r := rand.New(rand.NewPCG(7, uint64(len(names))))
	root := filepath.Join(src, "web torrent")
	for i, name := range names {
		b := make([]byte, sizes[i])
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		data[name] = b
		path := filepath.Join(root, filepath.FromSlash(name))
		if len(names) == 1 {
			path = filepath.Join(src, name)
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	what, url := root, ws.srv.URL+"/"
	if len(names) == 1 {
		what, url = filepath.Join(src, names[0]), ws.srv.URL+"/files/"+names[0]
	}
	raw, err := metainfo.Create(what, metainfo.CreateOptions{PieceLength: 64 << 10, WebSeeds: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ws.mu.Lock()
	for name, b := range data {
		if len(names) == 1 {
			ws.files["/files/"+name] = b
		} else {
			ws.files["/web torrent/"+name] = b
		}
	}
	ws.mu.Unlock()
	return mi, data
}

// newWebFixture is newFixture for mi with no data on disk: the web seeds
// are its only source. fetch, when set, replaces the client's fetcher.
func newWebFixture(t *testing.T, mi *metainfo.MetaInfo, fetch *webseed.Fetcher, opt Settings) *fixture {
	t.Helper()
	f := &fixture{t: t, mi: mi, dir: t.TempDir()}
	f.now.Store(time.Unix(1_700_000_000, 0).UnixNano())
	f.c = New(Config{PeerID: ourID, Tick: -1, Now: func() time.Time { return time.Unix(0, f.now.Load()) }, Logf: t.Logf})
	t.Cleanup(f.c.Close)
	if fetch != nil {
		// No session exists yet to read the field.
		f.c.web.fetch.Close()
		f.c.web.fetch = fetch
		t.Cleanup(fetch.Close)
	}
	opt.Dir = f.dir
	s, err := f.c.Add(mi, AddOptions{Settings: opt})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

// webSeeds reads the web seeds as the session has them now.
func (f *fixture) webSeeds() []WebSeedSnapshot {
	var out []WebSeedSnapshot
	f.s.post(evFunc(func(s *Session) { out = s.webSnapshots() }))
	f.sync()
	return out
}

func (f *fixture) state() State {
	var st State
	f.s.post(evFunc(func(s *Session) { st = s.life.state }))
	f.sync()
	return st
}

func (f *fixture) waitSeeding() {
	f.t.Helper()
	done := make(chan struct{})
	f.s.WhenComplete(func() { close(done) })
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		f.t.Fatalf("not complete within 20 s: state %v, web seeds %+v", f.state(), f.webSeeds())
	}
}

func (f *fixture) checkFiles(root string, data map[string][]byte) {
	f.t.Helper()
	for name, want := range data {
		got, err := os.ReadFile(filepath.Join(f.dir, root, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			f.t.Fatalf("%s on disk: %d bytes, %v; want the %d bytes served", name, len(got), err, len(want))
		}
	}
}

var webFiles, webSizes = []string{"a.bin", "sub dir/b?#%.bin", "c.bin"}, []int{1<<20 + 12345, 1, 3<<20 + 777}

// A torrent whose only source is a web seed downloads complete, ranges
// mapped across its files, with never more than webPerServer requests at
// once; its bytes count in the torrent's totals and the seed's.
func TestWebSeedDownloadsMultiFile(t *testing.T) {
	ws := newWebServer(t)
	mi, data := webTorrent(t, ws, webFiles, webSizes)
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitSeeding()
	f.checkFiles("web torrent", data)
	if p := ws.peak.Load(); p > webPerServer {
		t.Fatalf("%d requests at once, bound %d", p, webPerServer)
	}
	seeds := f.webSeeds()
	if len(seeds) != 1 || seeds[0].Status != "working" || seeds[0].Downloaded != mi.TotalLength || seeds[0].LastError != "" {
		t.Fatalf("web seeds %+v, want one working with %d bytes", seeds, mi.TotalLength)
	}
	f.tick(time.Second)
	sn := f.s.Snapshot()
	if sn.State != StateSeeding || sn.Downloaded != mi.TotalLength || sn.Wasted != 0 || len(sn.WebSeeds) != 1 {
		t.Fatalf("snapshot: %v, downloaded %d wasted %d, web seeds %+v", sn.State, sn.Downloaded, sn.Wasted, sn.WebSeeds)
	}
	t.Logf("%d requests for %d bytes", ws.requests.Load(), mi.TotalLength)
}

// A server that sends garbage for one file fails the piece's hash and is
// dropped: the garbage never reaches the disk.
func TestWebSeedBadDataDropped(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, webFiles, webSizes)
	garbage := bytes.Repeat([]byte{0xEE}, webSizes[2])
	ws.mu.Lock()
	ws.files["/web torrent/c.bin"] = garbage
	ws.mu.Unlock()
	f := newWebFixture(t, mi, nil, Settings{Sequential: true})
	f.waitFor("the web seed to be dropped", func() bool {
		s := f.webSeeds()
		return len(s) == 1 && s[0].Status == "dropped"
	})
	seed := f.webSeeds()[0]
	if !strings.Contains(seed.LastError, "failed its hash") {
		t.Fatalf("dropped with %q, want a hash failure", seed.LastError)
	}
	f.tick(time.Second)
	f.tick(time.Minute)
	sn := f.s.Snapshot()
	if sn.State != StateDownloading || sn.Wasted == 0 {
		t.Fatalf("state %v, wasted %d: want downloading with the bad piece wasted", sn.State, sn.Wasted)
	}
	// Writes of good pieces may still be on the disk lane: wait for them.
	f.waitFor("the hash lane to drain", func() bool {
		var v int64
		f.s.post(evFunc(func(s *Session) { v = s.dl.verifying }))
		f.sync()
		return v == 0
	})
	if b, err := os.ReadFile(filepath.Join(f.dir, "web torrent", "c.bin")); err == nil && bytes.Contains(b, garbage[:blockSize]) {
		t.Fatal("garbage from the web seed was written to disk")
	}
	n := ws.requests.Load()
	f.tick(time.Hour)
	if ws.requests.Load() != n {
		t.Fatal("a dropped web seed was asked again")
	}
}

// A server answering 500 is backed off (once, however many requests were
// in flight) and asked again when the backoff runs out; it then finishes.
func TestWebSeedBackoffThenRecovery(t *testing.T) {
	ws := newWebServer(t)
	mi, data := webTorrent(t, ws, webFiles, webSizes)
	var failing atomic.Bool
	failing.Store(true)
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitFor("the web seed to back off", func() bool {
		s := f.webSeeds()
		return len(s) == 1 && s[0].Status == "backoff" && s[0].InFlight == 0
	})
	seed := f.webSeeds()[0]
	now := time.Unix(0, f.now.Load())
	if seed.Failures != 1 || !seed.NextRetry.Equal(now.Add(webseed.FirstBackoff)) || !strings.Contains(seed.LastError, "500") {
		t.Fatalf("backing off: %+v; want 1 failure, retry in %v", seed, webseed.FirstBackoff)
	}
	n := ws.requests.Load()
	f.tick(webseed.FirstBackoff / 2)
	if ws.requests.Load() != n {
		t.Fatal("asked again during the backoff")
	}
	failing.Store(false)
	f.tick(webseed.FirstBackoff / 2)
	f.waitSeeding()
	f.checkFiles("web torrent", data)
	if seed := f.webSeeds()[0]; seed.Status != "working" || seed.Failures != 0 {
		t.Fatalf("after recovery: %+v", seed)
	}
}

// A server that ignores Range can serve a file's start but nothing after:
// it is dropped at the first range it answers with the whole file.
func TestWebSeedIgnoringRangeDropped(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, []string{"one.bin"}, []int{5<<20 + 3})
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		ws.mu.Lock()
		b := ws.files[r.URL.Path]
		ws.mu.Unlock()
		w.Write(b)
		return true
	})
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitFor("the web seed to be dropped", func() bool {
		s := f.webSeeds()
		return len(s) == 1 && s[0].Status == "dropped" && s[0].InFlight == 0
	})
	if seed := f.webSeeds()[0]; !strings.Contains(seed.LastError, "ignores range") {
		t.Fatalf("dropped with %q", seed.LastError)
	}
	if f.state() != StateDownloading {
		t.Fatal("complete without the ranges")
	}
}

// A server that stalls is given up on after the stall timeout, and stop
// ends the fetches in flight at once.
func TestWebSeedStallBounded(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, webFiles, webSizes)
	var ended atomic.Int64
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
			ended.Add(1)
		case <-time.After(10 * time.Second):
		}
		return true
	})
	f := newWebFixture(t, mi, webseed.NewFetcher(webseed.Config{StallTimeout: 200 * time.Millisecond}), Settings{})
	start := time.Now()
	f.waitFor("the stalled web seed to back off", func() bool {
		s := f.webSeeds()
		return len(s) == 1 && s[0].Status == "backoff" && s[0].InFlight == 0
	})
	if el := time.Since(start); el > 4*time.Second {
		t.Fatalf("backed off after %v with a 200 ms stall timeout", el)
	}
	if seed := f.webSeeds()[0]; !strings.Contains(seed.LastError, "stalled") {
		t.Fatalf("backed off with %q", seed.LastError)
	}

	// Stop while fetches hang: they end with the run, not at the timeout.
	patient := webseed.NewFetcher(webseed.Config{StallTimeout: time.Minute})
	t.Cleanup(patient.Close)
	f.s.post(evFunc(func(s *Session) { s.c.web.fetch = patient }))
	f.tick(webseed.FirstBackoff)
	f.waitFor("fetches to start", func() bool { return ws.active.Load() > 0 })
	before := ended.Load()
	if err := f.c.Stop(mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	f.waitFor("stop to end the hanging fetches", func() bool { return ws.active.Load() == 0 && ended.Load() > before })
}

// Reading the web seeds' rows of /torrentdata beside the trackers: a torrent
// without a url-list has none, and an unusable URL is shown dropped.
func TestWebSeedListBuilt(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, webFiles, webSizes)
	mi.WebSeeds = []string{"ftp://example.invalid/x", mi.WebSeeds[0], mi.WebSeeds[0]}
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitSeeding()
	seeds := f.webSeeds()
	if len(seeds) != 2 || seeds[0].Status != "dropped" || !strings.Contains(seeds[0].LastError, "bad URL") ||
		seeds[1].Status != "working" || seeds[1].Downloaded != mi.TotalLength {
		t.Fatalf("web seeds %+v: want the ftp one dropped, the duplicate merged", seeds)
	}
	if none := newFixture(t, false); len(none.webSeeds()) != 0 {
		t.Fatal("web seeds for a torrent without a url-list")
	}
}

// Beside a peer that never answers, a web seed still finishes the torrent:
// in endgame it is asked for the peer's blocks too, and the peer is sent
// CANCEL for each, as with any two peers.
func TestWebSeedRacesSilentPeerInEndgame(t *testing.T) {
	ws := newWebServer(t)
	mi, data := webTorrent(t, ws, webFiles, webSizes)
	gate := make(chan struct{})
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-gate:
		case <-time.After(10 * time.Second):
		}
		return false
	})
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitFor("the download to begin", func() bool { return f.state() == StateDownloading })
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	asked := fc.sentTypes(t)[wire.Request]
	if asked == 0 {
		t.Fatal("the peer was asked for nothing")
	}
	close(gate)
	f.waitSeeding()
	f.checkFiles("web torrent", data)
	if n := fc.sentTypes(t)[wire.Cancel]; n == 0 {
		t.Fatalf("the silent peer was asked for %d blocks and sent no CANCEL", asked)
	}
	if seeds := f.webSeeds(); seeds[0].Downloaded != mi.TotalLength {
		t.Fatalf("web seed gave %d bytes of %d", seeds[0].Downloaded, mi.TotalLength)
	}
}

// Under a download limit a web seed asks for no more than the tokens
// cover: each second's refill buys about one second's worth.
func TestWebSeedKeepsTheLimit(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, webFiles, webSizes)
	var asked atomic.Int64
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		var a, b int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err == nil {
			asked.Add(b - a + 1)
		}
		return false
	})
	const limit = 200 << 10
	f := newWebFixture(t, mi, nil, Settings{MaxDown: limit})
	f.waitFor("the download to begin", func() bool { return f.state() == StateDownloading })
	const ticks = 4
	for range ticks {
		f.tick(time.Second)
		f.waitFor("the fetch to end", func() bool { return f.webSeeds()[0].InFlight == 0 })
	}
	// Each tick's fetch may overshoot by a block, and the bucket saves two
	// seconds' worth at most.
	if got, most := asked.Load(), int64(ticks*(limit+blockSize)+limit); got > most || got == 0 {
		t.Fatalf("%d bytes asked over %d s at %d B/s, want 1..%d", got, ticks, limit, most)
	}
	t.Logf("%d bytes asked over %d s at %d B/s", asked.Load(), ticks, limit)
}

// A fetch that waited on a busy lane for most of its time is not sent, and
// the server is not blamed: its blocks are asked for again at once. (Sent,
// it would time out before this server's first byte, and count.)
func TestWebSeedLateFetchNotAFailure(t *testing.T) {
	ws := newWebServer(t)
	mi, data := webTorrent(t, ws, webFiles, webSizes)
	var slow atomic.Int64
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if slow.Add(1) <= webPerServer {
			time.Sleep(450 * time.Millisecond)
		}
		return false
	})
	f := &fixture{t: t, mi: mi, dir: t.TempDir()}
	f.now.Store(time.Unix(1_700_000_000, 0).UnixNano())
	f.c = New(Config{PeerID: ourID, Tick: -1, Now: func() time.Time { return time.Unix(0, f.now.Load()) }, Logf: t.Logf})
	t.Cleanup(f.c.Close)
	f.c.web.close()
	f.c.web = webLane{pool: storage.NewPool(1, 16), fetch: webseed.NewFetcher(webseed.Config{}), timeout: time.Second}
	busy := make(chan struct{})
	f.c.web.pool.TrySubmit(storage.Job{Kind: storage.KindFunc, Func: func() { <-busy }})
	s, err := f.c.Add(mi, AddOptions{Settings: Settings{Dir: f.dir}})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	f.waitFor("fetches to queue", func() bool { return f.webSeeds()[0].InFlight > 0 })
	time.Sleep(600 * time.Millisecond)
	if n := ws.requests.Load(); n != 0 {
		t.Fatalf("%d requests while the lane was busy", n)
	}
	close(busy)
	f.waitSeeding()
	f.checkFiles("web torrent", data)
	if seed := f.webSeeds()[0]; seed.Status != "working" || seed.Failures != 0 || seed.LastError != "" {
		t.Fatalf("after late fetches: %+v", seed)
	}
}

// A web seed that shared in failed pieces is backed off, and dropped at the
// third, as a peer would be banned.
func TestWebSeedSharedHashFailures(t *testing.T) {
	ws := newWebServer(t)
	mi, _ := webTorrent(t, ws, webFiles, webSizes)
	gate := make(chan struct{})
	defer close(gate)
	ws.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		return true
	})
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitFor("the download to begin", func() bool { return f.state() == StateDownloading })
	for i := 1; i <= maxHashFailures; i++ {
		f.s.post(evFunc(func(s *Session) { s.webPieceFailed(i, []picker.PeerID{s.web.list[0].id, 7}) }))
		seed := f.webSeeds()[0]
		want := "backoff"
		if i == maxHashFailures {
			want = "dropped"
		}
		if seed.Status != want || !strings.Contains(seed.LastError, "failed") {
			t.Fatalf("after %d shared failures: %+v, want %s", i, seed, want)
		}
		f.tick(time.Hour)
	}
}
