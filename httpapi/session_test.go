package httpapi

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const sessionToken = "session-test-token"

// login signs in with tok and returns the answer and the cookie's value.
func (e *env) login(tok string) (resp, *http.Cookie) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/login", strings.NewReader(fmt.Sprintf(`{"token":%q}`, tok)))
	req.Header.Set("Content-Type", "application/json")
	r := e.send(req)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "gts_session" {
			return r, c
		}
	}
	return r, nil
}

// withCookie sends a request carrying only the session cookie (and hdr).
func (e *env) withCookie(method, path, cookie string, body []byte, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	req.Header.Set("Cookie", "other=1; gts_session="+cookie)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return e.send(req)
}

func TestLoginCookie(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = sessionToken })
	r, c := e.login(sessionToken)
	e.must(r, http.StatusOK)
	if c == nil {
		t.Fatalf("no gts_session cookie: %v", r.header)
	}
	set := r.header.Get("Set-Cookie")
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 24*3600 || c.Secure {
		t.Errorf("cookie %q", set)
	}
	if b, err := hex.DecodeString(c.Value); err != nil || len(b) != 32 {
		t.Errorf("cookie value %q: want 32 random bytes in hex", c.Value)
	}
	exp, err := time.Parse(time.RFC3339, r.json["expires"].(string))
	if r.json["ok"] != true || err != nil || time.Until(exp) > 24*time.Hour+time.Minute || time.Until(exp) < 23*time.Hour {
		t.Errorf("login answer %s", r.raw)
	}
	// The cookie alone authorizes the API: reads, uploads, /session.
	e.must(e.withCookie("GET", "/alldata", c.Value, nil, nil), http.StatusOK)
	s := e.must(e.withCookie("GET", "/session", c.Value, nil, nil), http.StatusOK)
	if s.json["ok"] != true || s.json["expires"] != r.json["expires"] {
		t.Errorf("/session %s", s.raw)
	}
	tor, _ := newTorrent(t, "cookie", 41)
	same := map[string]string{"Origin": e.base}
	add := e.must(e.withCookie("POST", "/addtorrentfile?start=false", c.Value, tor, same), http.StatusOK)
	ih := add.json["infohash"].(string)
	e.must(e.withCookie("GET", "/torrentdata?infohash="+ih, c.Value, nil, nil), http.StatusOK)

	// Another site's page: refused with the cookie, whatever the call.
	for _, origin := range []string{"http://evil.example", "null", "http://127.0.0.1:1", "https://" + strings.TrimPrefix(e.base, "http://") + ".evil"} {
		cross := map[string]string{"Origin": origin}
		if r := e.withCookie("POST", "/addtorrentfile", c.Value, tor, cross); r.status != http.StatusForbidden || r.errMsg() == "" {
			t.Errorf("cross-origin (%s) upload with cookie: %d %s", origin, r.status, r.raw)
		}
		if r := e.withCookie("GET", "/removetorrent?infohash="+ih, c.Value, nil, cross); r.status != http.StatusForbidden {
			t.Errorf("cross-origin (%s) remove with cookie: %d %s", origin, r.status, r.raw)
		}
	}
	e.must(e.do("GET", "/torrentdata?infohash="+ih, nil), http.StatusOK) // still there
	// The bearer header is unaffected by Origin.
	req, _ := http.NewRequest("GET", e.base+"/alldata", nil)
	req.Header.Set("Authorization", "Bearer "+sessionToken)
	req.Header.Set("Origin", "http://evil.example")
	e.must(e.send(req), http.StatusOK)

	// EventSource sends the cookie and no header of its own.
	sreq, _ := http.NewRequest("GET", e.base+"/events", nil)
	sreq.Header.Set("Cookie", "gts_session="+c.Value)
	res, err := e.hc.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(line, "retry:") {
		t.Errorf("/events with cookie: %d %q", res.StatusCode, line)
	}

	// Logout forgets the session and clears the cookie.
	out := e.must(e.withCookie("POST", "/logout", c.Value, nil, same), http.StatusOK)
	if got := out.header.Get("Set-Cookie"); !strings.HasPrefix(got, "gts_session=;") || !strings.Contains(got, "Max-Age=0") {
		t.Errorf("logout Set-Cookie %q", got)
	}
	for _, p := range []string{"/alldata", "/session", "/events"} {
		if r := e.withCookie("GET", p, c.Value, nil, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s after logout: %d %s", p, r.status, r.raw)
		}
	}
	e.must(e.withCookie("POST", "/logout", c.Value, nil, nil), http.StatusOK) // again: still 200
	// Made-up cookies are nobody's.
	for _, v := range []string{"", "x", strings.Repeat("0", 64), c.Value + "00"} {
		if r := e.withCookie("GET", "/alldata", v, nil, nil); r.status != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d", v, r.status)
		}
	}
	if r := e.withCookie("GET", "/logout", "", nil, nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /logout: %d %v", r.status, r.header)
	}
}

// A session ends at its lifetime however busy: its cookie is refused then.
func TestSessionExpires(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = sessionToken; c.SessionLifetime = 300 * time.Millisecond })
	r, c := e.login(sessionToken)
	e.must(r, http.StatusOK)
	if c == nil || c.MaxAge != 1 {
		t.Fatalf("cookie %q", r.header.Get("Set-Cookie"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.withCookie("GET", "/session", c.Value, nil, nil).status == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("session still valid 10 s after a 300 ms lifetime")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.withCookie("GET", "/alldata", c.Value, nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("expired cookie on /alldata: %d", r.status)
	}
}

// Wrong tokens: 401 closing the connection, then 429 past the limit, for
// the right token too; the bearer header still works meanwhile.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = sessionToken })
	for i := range loginFailures {
		r, c := e.login("wrong" + strconv.Itoa(i))
		if r.status != http.StatusUnauthorized || c != nil || r.errMsg() == "" {
			t.Fatalf("wrong token %d: %d %s", i, r.status, r.raw)
		}
	}
	for _, tok := range []string{"wrong", sessionToken} {
		r, c := e.login(tok)
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if r.status != http.StatusTooManyRequests || c != nil || err != nil || ra < 1 || ra > 60 {
			t.Errorf("login %q past the limit: %d Retry-After %q %s", tok, r.status, r.header.Get("Retry-After"), r.raw)
		}
	}
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
	// Garbage bodies and oversized ones are refused too.
	e2 := newEnv(t, func(c *Config) { c.Token = sessionToken })
	for _, body := range []string{"", "{", `{"token":1}`, `{"token":"` + strings.Repeat("a", 8<<10) + `"}`} {
		req, _ := http.NewRequest("POST", e2.base+"/login", strings.NewReader(body))
		if r := e2.send(req); r.status != http.StatusBadRequest && r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("login body %.20q: %d %s", body, r.status, r.raw)
		}
	}
}

// A wrong login closes its connection like a 401; a cookie proves one
// like the token, so it is never counted as an idle stranger's.
func TestSessionConnections(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = sessionToken })
	c, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	body := `{"token":"nope"}`
	fmt.Fprintf(c, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	b, err := io.ReadAll(c)
	if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 401")) {
		t.Fatalf("wrong login: %q %v", b, err)
	}

	_, ck := e.login(sessionToken)
	c2, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c2, "GET /stats HTTP/1.1\r\nHost: x\r\nCookie: gts_session=%s\r\n\r\n", ck.Value)
	res, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("stats with cookie: %v %v", res, err)
	}
	io.Copy(io.Discard, res.Body)
	e.hc.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		live, unproven, _ := e.srv.conns.snapshot()
		if live >= 1 && unproven == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cookie connection not proven: live %d unproven %d", live, unproven)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sessions are bounded: the oldest goes first.
func TestSessionsBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = sessionToken })
	var first, last string
	for i := range maxSessions + 5 {
		r, c := e.login(sessionToken)
		e.must(r, http.StatusOK)
		if i == 0 {
			first = c.Value
		}
		last = c.Value
	}
	if r := e.withCookie("GET", "/session", first, nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("oldest of %d sessions still valid", maxSessions+5)
	}
	e.must(e.withCookie("GET", "/session", last, nil, nil), http.StatusOK)
}
