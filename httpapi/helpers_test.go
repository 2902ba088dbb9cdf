package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// env is a running API over a real engine client, on 127.0.0.1.
type env struct {
	t      testing.TB
	client *engine.Client
	srv    *Server
	base   string
	root   string
	token  string
	hc     *http.Client

	mu      sync.Mutex
	changes []metainfo.Hash
	listen  fakeListener
}

// fakeListener stands in for the network layer's listener status.
type fakeListener struct{ msg atomic.Pointer[string] }

func (f *fakeListener) ListenError() string {
	if p := f.msg.Load(); p != nil {
		return *p
	}
	return ""
}

// newEnv starts an engine (50 ms ticks, no network layer) and the API.
// mod may adjust the Config before New.
func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, root: filepath.Join(t.TempDir(), "downloads"), hc: &http.Client{Timeout: 10 * time.Second}}
	c := engine.New(engine.Config{Tick: 50 * time.Millisecond, Listener: &e.listen, Logf: func(string, ...any) {}})
	e.client = c
	cfg := Config{
		Client:       c,
		Addr:         "127.0.0.1:0",
		DownloadRoot: e.root,
		OnChange: func(ih metainfo.Hash) {
			e.mu.Lock()
			e.changes = append(e.changes, ih)
			e.mu.Unlock()
		},
		Logf: t.Logf,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.token = cfg.Token
	srv, err := New(cfg)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	e.srv = srv
	e.base = "http://" + srv.Addr()
	t.Cleanup(func() {
		e.hc.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		c.Close()
	})
	return e
}

// resp is one decoded answer.
type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// errMsg is the "error" field of a failure answer.
func (r resp) errMsg() string {
	s, _ := r.json["error"].(string)
	return s
}

// do sends a request with the env's token and decodes the JSON answer;
// every answer of the API, success or failure, must be a JSON object.
func (e *env) do(method, path string, body []byte) resp {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+e.token)
}

func (e *env) doAuth(method, path string, body []byte, auth string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" && e.token != "" {
		req.Header.Set("Authorization", auth)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: content type %q, body %q", req.Method, req.URL.Path, ct, raw)
	}
	if err := json.Unmarshal(raw, &r.json); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %v: %q", req.Method, req.URL.Path, err, raw)
	}
	return r
}

// must checks the status, printing the answer when it differs.
func (e *env) must(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// add posts a .torrent with the given query and expects 200.
func (e *env) add(torrent []byte, q url.Values) metainfo.Hash {
	e.t.Helper()
	r := e.must(e.do("POST", "/addtorrentfile?"+q.Encode(), torrent), http.StatusOK)
	ih, err := metainfo.ParseHash(fmt.Sprint(r.json["infohash"]))
	if err != nil {
		e.t.Fatalf("answer infohash: %v (%s)", err, r.raw)
	}
	return ih
}

// torrent fetches /torrentdata for ih, expecting 200.
func (e *env) torrent(ih metainfo.Hash) map[string]any {
	e.t.Helper()
	return e.must(e.do("GET", "/torrentdata?infohash="+ih.String(), nil), http.StatusOK).json
}

// waitTorrent polls /torrentdata until ok accepts it (bounded: 5 s).
func (e *env) waitTorrent(ih metainfo.Hash, what string, ok func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := e.torrent(ih)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; last: %v", what, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) changed() []metainfo.Hash {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]metainfo.Hash(nil), e.changes...)
}

// makeData writes files of the given sizes (seeded random bytes) into
// dir/name and returns that folder.
func makeData(t testing.TB, dir, name string, seed uint64, sizes ...int) string {
	t.Helper()
	folder := filepath.Join(dir, name)
	r := mrand.New(mrand.NewPCG(seed, 7))
	for i, n := range sizes {
		p := filepath.Join(folder, fmt.Sprintf("f%d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return folder
}

// makeTorrent creates a .torrent of path with 16 KiB pieces.
func makeTorrent(t testing.TB, path string, trackers ...string) []byte {
	t.Helper()
	opt := metainfo.CreateOptions{PieceLength: 16 << 10, Date: time.Unix(1700000000, 0)}
	if len(trackers) > 0 {
		opt.Trackers = [][]string{trackers}
	}
	b, err := metainfo.Create(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTorrent is a .torrent of fresh data kept outside the download root,
// so adding it downloads (and, without peers, just waits).
func newTorrent(t testing.TB, name string, seed uint64, trackers ...string) ([]byte, *metainfo.MetaInfo) {
	t.Helper()
	b := makeTorrent(t, makeData(t, t.TempDir(), name, seed, 40<<10, 5000), trackers...)
	mi, err := metainfo.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, mi
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
