package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotorrentserver/engine"
)

// get fetches path with no credentials and returns the answer and body.
func (e *env) raw(method, path string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, b
}

// The page and its files load without the token, with their media types
// and the security headers; nothing else is reachable through /ui/.
func TestUIFiles(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = "ui-token" })
	index, _ := webFS.ReadFile("web/index.html")
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/ui/index.html", "text/html; charset=utf-8"},
		{"/ui/app.js", "text/javascript; charset=utf-8"},
		{"/ui/app.css", "text/css; charset=utf-8"},
	} {
		res, body := e.raw("GET", tc.path, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("GET %s: %d %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		name := strings.TrimPrefix(tc.path, "/ui/")
		if tc.path == "/" {
			name = "index.html"
		}
		want, _ := webFS.ReadFile("web/" + name)
		if !bytes.Equal(body, want) {
			t.Errorf("GET %s: body differs from web/%s", tc.path, name)
		}
		checkUIHeaders(t, tc.path, res.Header)
		// HEAD: the headers without the body.
		res, body = e.raw("HEAD", tc.path, nil)
		if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("HEAD %s: %d %q, %d bytes", tc.path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
		// Revalidation (Cache-Control: no-cache) costs no body.
		etag := res.Header.Get("ETag")
		res, body = e.raw("GET", tc.path, map[string]string{"If-None-Match": etag})
		if etag == "" || res.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("GET %s If-None-Match %s: %d", tc.path, etag, res.StatusCode)
		}
	}
	if res, body := e.raw("GET", "/", nil); !bytes.Equal(body, index) || !bytes.Contains(body, []byte(`id="login"`)) {
		t.Errorf("/: %d %q", res.StatusCode, body)
	}
	// Unknown files and folders: a JSON 404 with the same headers.
	for _, p := range []string{"/ui/", "/ui/nope.js", "/ui/web/index.html", "/ui//etc/passwd", "/ui/app.js/"} {
		res, body := e.raw("GET", p, nil)
		var m map[string]any
		if res.StatusCode != http.StatusNotFound || json.Unmarshal(body, &m) != nil || m["error"] == nil {
			t.Errorf("GET %s: %d %q", p, res.StatusCode, body)
		}
		checkUIHeaders(t, p, res.Header)
	}
	// Dot segments are resolved before routing: out of /ui/ is the API,
	// which wants the token; nothing outside web/ is ever a file.
	for _, p := range []string{"/ui/../handlers.go", "/ui/%2e%2e/ui.go", "/ui/..%2fui.go", "/ui/..%2f..%2fgo.mod"} {
		res, body := e.raw("GET", p, nil)
		if (res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusNotFound) ||
			bytes.Contains(body, []byte("package")) || bytes.Contains(body, []byte("module")) {
			t.Errorf("GET %s: %d %q", p, res.StatusCode, body)
		}
	}
	res, _ := e.raw("POST", "/ui/app.js", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/app.js: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	// API answers carry the two browser headers too, refusals included.
	for _, r := range []resp{e.do("GET", "/alldata", nil), e.doAuth("GET", "/alldata", nil, "Bearer nope")} {
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("API answer %d headers %v", r.status, r.header)
		}
	}
}

func checkUIHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s %q, want %q", path, k, got, v)
		}
	}
}

// A client that loads the page without signing in gets a connection per
// file: kept alive, unproven connections past their headers could not be
// evicted and a flood of page loads would hold every slot.
func TestUIUnprovenConnectionCloses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = "ui-token" })
	c, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ui/app.js HTTP/1.1\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(c) // ends only when the server closes
	if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
		t.Fatalf("%q %v", b, err)
	}
}

// Each peer's link and share, as the dashboard's peer flags read them
// (netio's TestPeerSnapshotConnKind fills them from real connections).
func TestPeerFlagsJSON(t *testing.T) {
	p := engine.PeerSnapshot{Encrypted: true, UTP: true, Outbound: true, NumPieces: 8, Have: 2, Bitfield: []byte{0xc0}}
	b, _ := json.Marshal(peerFromSnapshot(&p, 8))
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["encrypted"] != true || m["utp"] != true || m["outgoing"] != true || m["progress"] != 0.25 || m["seed"] != false {
		t.Errorf("peer JSON %s", b)
	}
	b, _ = json.Marshal(peerFromSnapshot(&engine.PeerSnapshot{}, 8))
	json.Unmarshal(b, &m)
	if m["encrypted"] != false || m["utp"] != false || m["outgoing"] != false || m["progress"] != 0.0 || m["seed"] != false {
		t.Errorf("unknown peer JSON %s", b)
	}
}
