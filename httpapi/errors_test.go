package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = "s3cret-token" })
	for path, rt := range routes {
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token"} {
			r := e.doAuth(rt.method, path, nil, auth)
			if auth == "" {
				r = e.send(mustReq(t, rt.method, e.base+path))
			}
			if r.status != http.StatusUnauthorized || r.errMsg() == "" {
				t.Errorf("%s %s with %q: %d %s", rt.method, path, auth, r.status, r.raw)
			}
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="gotorrentserver"` {
				t.Errorf("%s with %q: WWW-Authenticate %q", path, auth, got)
			}
		}
	}
	// Unknown paths do not reveal themselves before authentication.
	if r := e.send(mustReq(t, "GET", e.base+"/nope")); r.status != http.StatusUnauthorized {
		t.Errorf("unknown path without token: %d", r.status)
	}
	// Expect: 100-continue without the token is refused before the upload.
	req, _ := http.NewRequest("POST", e.base+"/addtorrentfile", bytes.NewReader(make([]byte, 100<<10)))
	req.Header.Set("Expect", "100-continue")
	if r := e.send(req); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("100-continue without token: %d %s", r.status, r.raw)
	}
	for _, auth := range []string{"Bearer s3cret-token", "bearer s3cret-token", "BEARER s3cret-token"} {
		e.must(e.doAuth("GET", "/alldata", nil, auth), http.StatusOK)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNewRefuses(t *testing.T) {
	c := engine.New(engine.Config{Tick: -1, Logf: func(string, ...any) {}})
	defer c.Close()
	root := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Client: c, Addr: ":8080", DownloadRoot: root}, ErrTokenRequired},
		{Config{Client: c, Addr: "0.0.0.0:0", DownloadRoot: root}, ErrTokenRequired},
		{Config{Client: c, Addr: "[::]:0", DownloadRoot: root}, ErrTokenRequired},
		{Config{Client: c, Addr: "192.0.2.1:80", DownloadRoot: root}, ErrTokenRequired},
		{Config{Client: c, Addr: "example.com:80", DownloadRoot: root}, ErrTokenRequired},
		{Config{Client: c, Addr: "127.0.0.1:0", DownloadRoot: "relative/dir"}, ErrRootNotAbs},
		{Config{Client: c, Addr: "0.0.0.0:0", Token: "has space", DownloadRoot: root}, ErrBadToken},
		{Config{Addr: "127.0.0.1:0", DownloadRoot: root}, ErrNoClient},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("New(addr %q, token %q, root %q) = %v, want %v", tc.cfg.Addr, tc.cfg.Token, tc.cfg.DownloadRoot, err, tc.want)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.3.4.5:0"} {
		if _, err := New(Config{Client: c, Addr: addr, DownloadRoot: root}); err != nil {
			t.Errorf("loopback %s without token refused: %v", addr, err)
		}
	}
	if _, err := New(Config{Client: c, Addr: "0.0.0.0:0", Token: "t", DownloadRoot: root}); err != nil {
		t.Errorf("public address with a token refused: %v", err)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	e := newEnv(t, nil)
	for path, rt := range routes {
		wrong := "POST"
		if rt.method == "POST" {
			wrong = "GET"
		}
		if postBeside[path] != nil {
			wrong = "PUT"
		}
		r := e.must(e.do(wrong, path, nil), http.StatusMethodNotAllowed)
		if r.header.Get("Allow") != allow(path, rt) || r.errMsg() == "" {
			t.Errorf("%s %s: Allow %q, body %s", wrong, path, r.header.Get("Allow"), r.raw)
		}
	}
	// "/" is the dashboard's page (ui_test.go).
	for _, p := range []string{"/nope", "/alldata/", "/ALLDATA", "/ui", "/UI/index.html"} {
		if r := e.do("GET", p, nil); r.status != http.StatusNotFound || r.errMsg() == "" {
			t.Errorf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	// A header beyond fasthttp's read buffer still gets a JSON answer.
	if r := e.do("GET", "/alldata?x="+strings.Repeat("a", 8000), nil); r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge query: %d %s", r.status, r.raw)
	}
	r := e.must(e.do("GET", "/alldata", nil), http.StatusOK)
	if got := r.header.Get("Server"); got != "gotorrentserver" {
		t.Errorf("Server header %q", got)
	}
}

func TestParamErrors(t *testing.T) {
	e := newEnv(t, nil)
	tor, _ := newTorrent(t, "p", 30)
	ih := e.add(tor, url.Values{"start": {"false"}}).String()
	bad := []string{"", "infohash=", "infohash=abc", "infohash=" + ih + "0", "infohash=" + ih[:39] + "g",
		"infohash=" + ih + "&infohash=" + ih, "infohash=%00" + ih[1:]}
	for _, path := range []string{"/torrentdata", "/stoptorrent", "/starttorrent", "/removetorrent", "/setdownrate", "/setuprate"} {
		for _, q := range bad {
			if r := e.do("GET", path+"?"+q+"&rate=1", nil); r.status != http.StatusBadRequest || r.errMsg() == "" {
				t.Errorf("%s?%s: %d %s", path, q, r.status, r.raw)
			}
		}
		unknown := strings.Repeat("ab", 20)
		if r := e.do("GET", path+"?rate=1&infohash="+unknown, nil); r.status != http.StatusNotFound {
			t.Errorf("%s unknown torrent: %d %s", path, r.status, r.raw)
		}
	}
	for _, path := range []string{"/setdownrate", "/setuprate"} {
		for _, rate := range []string{"", "rate=", "rate=-1", "rate=1.5", "rate=abc", "rate=+5", "rate=1e3",
			"rate=99999999999999999999", "rate=4294967297", "rate=1&rate=2"} {
			if r := e.do("GET", path+"?infohash="+ih+"&"+rate, nil); r.status != http.StatusBadRequest || r.errMsg() == "" {
				t.Errorf("%s %s: %d %s", path, rate, r.status, r.raw)
			}
		}
	}
	for _, q := range []string{"delete=yes", "delete=1", "delete=TRUE"} {
		e.must(e.do("GET", "/removetorrent?infohash="+ih+"&"+q, nil), http.StatusBadRequest)
	}
	tor2, _ := newTorrent(t, "p2", 31)
	for _, q := range []string{"start=yes", "start=", "maxdown=-5", "maxup=x", "maxdown=1.0", "path=a&path=b"} {
		if q == "start=" {
			continue // an empty value is the default, like an absent one
		}
		if r := e.do("POST", "/addtorrentfile?"+q, tor2); r.status != http.StatusBadRequest || r.errMsg() == "" {
			t.Errorf("addtorrentfile?%s: %d %s", q, r.status, r.raw)
		}
	}
	if s := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any); len(s) != 1 {
		t.Errorf("%d sessions after refused adds, want 1", len(s))
	}
	if n := len(e.changed()); n != 1 {
		t.Errorf("%d OnChange calls after refused commands, want 1", n)
	}
}

func TestBadTorrentBodies(t *testing.T) {
	e := newEnv(t, nil)
	good, _ := newTorrent(t, "good", 40)
	bodies := map[string][]byte{
		"garbage":   []byte("hello, this is not bencode"),
		"truncated": good[:len(good)/2],
		"no info":   []byte("d8:announce3:abce"),
		"list":      []byte("li1ee"),
		"trailing":  append(append([]byte(nil), good...), 'x'),
	}
	for name, b := range bodies {
		_, want := metainfo.Parse(b)
		if want == nil {
			t.Fatalf("%s: metainfo accepted it", name)
		}
		r := e.must(e.do("POST", "/addtorrentfile", b), http.StatusBadRequest)
		if r.errMsg() != want.Error() {
			t.Errorf("%s: error %q, want metainfo's %q", name, r.errMsg(), want.Error())
		}
	}
	if r := e.must(e.do("POST", "/addtorrentfile", nil), http.StatusBadRequest); r.errMsg() == "" {
		t.Error("empty body: no message")
	}
	if s := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any); len(s) != 0 {
		t.Errorf("%d sessions after bad bodies", len(s))
	}
}

func TestTraversal(t *testing.T) {
	outside := t.TempDir()
	e := newEnv(t, nil)
	if err := os.MkdirAll(e.root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "missing"), filepath.Join(e.root, "dangle")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tor, _ := newTorrent(t, "trav", 50)
	for _, p := range []string{"../x", "a/../../x", "..", outside, filepath.Join(outside, "sub"), "/",
		e.root + "/../escape", "link", "link/sub", "dangle", "dangle/sub", "file", "file/sub", "a\x00b"} {
		r := e.do("POST", "/addtorrentfile?"+url.Values{"path": {p}}.Encode(), tor)
		if r.status != http.StatusBadRequest || r.errMsg() == "" {
			t.Errorf("path %q: %d %s", p, r.status, r.raw)
		}
		mag := `{"url":"magnet:?xt=urn:btih:` + strings.Repeat("cd", 20) + `","targetdir":` + jsonString(p) + `}`
		if r := e.do("POST", "/addmagnet", []byte(mag)); r.status != http.StatusBadRequest {
			t.Errorf("magnet targetdir %q: %d %s", p, r.status, r.raw)
		}
	}
	for _, p := range []string{"sub", "missing", "x", "escape"} {
		if exists(filepath.Join(outside, p)) {
			t.Errorf("created %s outside the root", p)
		}
	}
	if exists(filepath.Join(filepath.Dir(e.root), "x")) || exists(filepath.Join(filepath.Dir(e.root), "escape")) {
		t.Error("created a folder beside the root")
	}
	if s := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any); len(s) != 0 {
		t.Errorf("%d sessions after refused paths", len(s))
	}
	// Inside the root, ".." that stays inside is fine.
	ih := e.add(tor, url.Values{"path": {"a/b/../c"}, "start": {"false"}})
	if m := e.torrent(ih); m["path"] != filepath.Join(e.srv.root.real, "a", "c") {
		t.Errorf("path %v", m["path"])
	}
}

// TestRootThroughSymlink: a root configured through a symlink accepts
// absolute paths in either spelling.
func TestRootThroughSymlink(t *testing.T) {
	real := t.TempDir()
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(real, alias); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.DownloadRoot = alias })
	tor, _ := newTorrent(t, "sym", 60)
	ih := e.add(tor, url.Values{"path": {filepath.Join(alias, "x")}, "start": {"false"}})
	tor2, _ := newTorrent(t, "sym2", 61)
	ih2 := e.add(tor2, url.Values{"path": {filepath.Join(real, "y")}, "start": {"false"}})
	if p := e.torrent(ih)["path"]; p != filepath.Join(e.srv.root.real, "x") {
		t.Errorf("path %v", p)
	}
	if p := e.torrent(ih2)["path"]; p != filepath.Join(e.srv.root.real, "y") {
		t.Errorf("path %v", p)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestOversizedBody(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t, func(c *Config) { c.MaxBody = limit })
	big := bytes.Repeat([]byte("x"), 4*limit)
	for _, path := range []string{"/addtorrentfile", "/addmagnet"} {
		r := e.must(e.do("POST", path, big), http.StatusRequestEntityTooLarge)
		if !strings.Contains(r.errMsg(), "larger than") {
			t.Errorf("%s: 413 message %q", path, r.errMsg())
		}
		// Chunked, so the size is only known while reading.
		req, _ := http.NewRequest("POST", e.base+path, io.MultiReader(bytes.NewReader(big)))
		e.must(e.send(req), http.StatusRequestEntityTooLarge)
		// Expect: 100-continue is refused before the body is sent.
		req, _ = http.NewRequest("POST", e.base+path, bytes.NewReader(big))
		req.Header.Set("Expect", "100-continue")
		e.must(e.send(req), http.StatusRequestEntityTooLarge)
	}
	// A client announcing 1 GiB and sending nothing gets its answer at once.
	conn, err := net.DialTimeout("tcp", e.srv.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST /addtorrentfile HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("raw oversize: %d %q", res.StatusCode, body)
	}
	// The server still serves after all that.
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
}

func TestPanicIsJSON500(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.OnChange = func(metainfo.Hash) { panic("hook exploded") }
		c.Logf = func(string, ...any) {}
	})
	tor, _ := newTorrent(t, "boom", 70)
	r := e.must(e.do("POST", "/addtorrentfile?start=false", tor), http.StatusInternalServerError)
	if r.errMsg() != "internal error" {
		t.Errorf("500 body %s", r.raw)
	}
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	addr := e.srv.Addr()
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
	if err := e.srv.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	e.hc.CloseIdleConnections()
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting after Shutdown")
	}
}

// Shutdown right after Start used to wait for its whole context, leaving
// the server running: fasthttp's Serve had not registered the listener
// yet, so its Shutdown closed nothing.
func TestShutdownRightAfterStart(t *testing.T) {
	for range 5 {
		e := newEnv(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t0 := time.Now()
		err := e.srv.Shutdown(ctx)
		cancel()
		if err != nil || time.Since(t0) > time.Second {
			t.Fatalf("shutdown right after start: %v after %v", err, time.Since(t0))
		}
		if c, err := net.DialTimeout("tcp", e.srv.Addr(), time.Second); err == nil {
			c.Close()
			t.Fatal("still accepting after Shutdown")
		}
	}
}
