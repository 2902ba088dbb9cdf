package httpapi

// The connection tracker's rules one by one: the total cap's JSON 503,
// the header timeout, eviction order, limits, accept errors and the
// header scanner.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawClient is one keep-alive connection speaking HTTP/1.1 by hand.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

// get sends GET path with the token (when not empty) and reads the answer.
func (r *rawClient) get(t *testing.T, path, token string) (*http.Response, string) {
	t.Helper()
	r.c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(r.c, req+"\r\n"); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	res, body := readAnswer(t, r.br, "GET "+path)
	return res, string(body)
}

// When every slot is held by clients with the token, a newcomer gets a
// JSON 503 with Retry-After, not fasthttp's text/plain one; the holders
// are never evicted, not even after the header timeout.
func TestFullServerAnswersJSON503(t *testing.T) {
	const slots = 8
	const headerTimeout = 300 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.Token = floodToken; c.MaxConns = slots; c.HeaderTimeout = headerTimeout })
	var holders []*rawClient
	defer func() {
		for _, h := range holders {
			h.c.Close()
		}
	}()
	for i := range slots {
		h := dialRaw(t, e.srv.Addr())
		holders = append(holders, h)
		if res, body := h.get(t, "/alldata", floodToken); res.StatusCode != http.StatusOK {
			t.Fatalf("holder %d: %d %s", i, res.StatusCode, body)
		}
	}
	extra := dialRaw(t, e.srv.Addr())
	defer extra.c.Close()
	extra.c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(extra.c, "GET /alldata HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+floodToken+"\r\n\r\n")
	res, msg := rawResponse(t, extra.br, "newcomer at the cap")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != strconv.Itoa(busyRetryAfter) || !res.Close {
		t.Errorf("newcomer at the cap: %d, Retry-After %q, close %v", res.StatusCode, res.Header.Get("Retry-After"), res.Close)
	}
	if _, err := extra.br.ReadByte(); err != io.EOF {
		t.Errorf("after the 503: read gave %v, want EOF", err)
	}
	t.Logf("full server: %d %q, Retry-After %s", res.StatusCode, msg, res.Header.Get("Retry-After"))

	time.Sleep(3 * headerTimeout)
	for i, h := range holders {
		if res, body := h.get(t, "/alldata", floodToken); res.StatusCode != http.StatusOK {
			t.Errorf("holder %d after the header timeout: %d %s", i, res.StatusCode, body)
		}
	}
	// A slot freed is a slot for the next client.
	holders[0].c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, lat := goodRequest(t, e)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot was not reused: %d after %v", status, lat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The header timeout is for headers: a client with the token may take its
// time over the body, while one stuck in its headers is closed.
func TestHeaderTimeoutSparesBodies(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.Token = floodToken; c.HeaderTimeout = headerTimeout })
	slowBody := dialRaw(t, e.srv.Addr())
	defer slowBody.c.Close()
	slowHeader := dialRaw(t, e.srv.Addr())
	defer slowHeader.c.Close()
	slowBody.c.SetDeadline(time.Now().Add(10 * time.Second))
	body := "not a torrent"
	fmt.Fprintf(slowBody.c, "POST /addtorrentfile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", floodToken, len(body))
	io.WriteString(slowHeader.c, "GET /alldata HTTP/1.1\r\nHost: x\r\n")
	t0 := time.Now()
	if n, last := closedBy([]net.Conn{slowHeader.c}, t0.Add(headerTimeout+2*time.Second)); n != 1 {
		t.Errorf("a connection stuck in its headers is still open %v later", time.Since(t0))
	} else {
		t.Logf("stuck headers closed after %v (header timeout %v)", last.Sub(t0).Round(time.Millisecond), headerTimeout)
	}
	time.Sleep(time.Until(t0.Add(3 * headerTimeout)))
	io.WriteString(slowBody.c, body)
	res, msg := rawResponse(t, slowBody.br, "slow body")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("body sent %v after its headers: %d %q, want 400 for a body that is no torrent", time.Since(t0), res.StatusCode, msg)
	}
}

// fasthttp answers malformed requests itself; every such answer must be
// JSON, like the API's own.
func TestMalformedRequestsGetJSON(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = floodToken })
	auth := "Authorization: Bearer " + floodToken + "\r\n"
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"garbage", "garbage\r\n\r\n", http.StatusBadRequest},
		{"no version", "GET /alldata\r\n\r\n", http.StatusBadRequest},
		{"bad method", "G\x01T /alldata HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"huge header", "GET /alldata HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"bad length", "POST /addmagnet HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\n\r\n", http.StatusBadRequest},
		{"bad chunk", "POST /addmagnet HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", http.StatusBadRequest},
		{"chunked, no token", "POST /addmagnet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", http.StatusUnauthorized},
		{"expect, no token", "POST /addmagnet HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", http.StatusUnauthorized},
		{"HTTP/1.0, no token", "POST /addmagnet HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", http.StatusUnauthorized},
	} {
		c := dialRaw(t, e.srv.Addr())
		c.c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c.c, tc.req)
		res, msg := rawResponse(t, c.br, tc.name)
		if res.StatusCode != tc.status || !res.Close {
			t.Errorf("%s: %d %q (close %v), want %d closing", tc.name, res.StatusCode, msg, res.Close, tc.status)
		}
		c.c.Close()
	}
}

func TestConnLimits(t *testing.T) {
	if DefaultMaxConns+maxEvicting >= concurrency {
		t.Fatalf("DefaultMaxConns %d + maxEvicting %d leave no room under fasthttp's %d", DefaultMaxConns, maxEvicting, concurrency)
	}
	l, err := resolveLimits(Config{MaxBody: DefaultMaxBody})
	if err != nil || l.maxConns != DefaultMaxConns || l.maxUnproven != DefaultMaxConns/8 || l.maxUnprovenPerIP != DefaultMaxConns/64 || l.headerTimeout != DefaultHeaderTimeout {
		t.Errorf("defaults: %+v %v", l, err)
	}
	if l, err := resolveLimits(Config{MaxConns: 8}); err != nil || l.maxUnproven != 1 || l.maxUnprovenPerIP != 1 {
		t.Errorf("small MaxConns: %+v %v", l, err)
	}
	for _, cfg := range []Config{
		{MaxConns: DefaultMaxConns + 1},
		{MaxConns: -1},
		{HeaderTimeout: -time.Second},
		{MaxConns: 10, MaxUnprovenConns: 11},
		{MaxUnprovenConns: 10, MaxUnprovenConnsPerIP: 11},
	} {
		if _, err := resolveLimits(cfg); !errors.Is(err, ErrBadLimits) {
			t.Errorf("%+v: %v, want ErrBadLimits", cfg, err)
		}
	}
	e := newEnv(t, nil)
	if e.srv.srv.MaxConnsPerIP != 0 || e.srv.srv.Concurrency != concurrency {
		// fasthttp's per-IP limit answers in text/plain.
		t.Errorf("fasthttp MaxConnsPerIP %d, Concurrency %d", e.srv.srv.MaxConnsPerIP, e.srv.srv.Concurrency)
	}
}

// Whom a full cap evicts: a connection whose exchange is over, then one
// that has waited minSilentAge for its headers, oldest first; never one in
// the middle of a request (it resolves within microseconds without the
// token, and is a real client with it) nor one that just connected.
func TestEvictionOrder(t *testing.T) {
	tr := newConnTracker(connLimits{maxConns: 100, maxUnproven: 3, maxUnprovenPerIP: 3, headerTimeout: time.Hour}, t.Logf)
	var mine []net.Conn
	defer func() { closeAll(mine) }()
	admitAged := func(age time.Duration) *trackedConn {
		a, b := net.Pipe()
		mine = append(mine, a, b)
		c := tr.admit(a)
		if c == nil {
			t.Fatal("refused")
		}
		tr.mu.Lock()
		c.accepted = c.accepted.Add(-age)
		tr.mu.Unlock()
		return c
	}
	admit := func() *trackedConn { return admitAged(time.Second) }
	order := func() (s []*trackedConn) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for e := tr.unproven.Front(); e != nil; e = e.Next() {
			s = append(s, e.Value.(*trackedConn))
		}
		return s
	}
	same := func(what string, got []*trackedConn, want ...*trackedConn) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d unproven, want %d", what, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: unproven #%d differs", what, i)
			}
		}
	}
	a, b, c := admit(), admit(), admit()
	a.headerSeen.Store(true) // in the middle of its request
	b.closing.Store(true)    // answered, lingering
	d := admit()
	same("over-exchange first", order(), a, c, d)
	e := admit()
	same("then the oldest waiting", order(), a, d, e)
	d.headerSeen.Store(true)
	e.headerSeen.Store(true)
	f := admit()
	same("never one in the middle of a request: the cap gives way", order(), a, d, e, f)
	tr.prove(d)
	if !d.proven.Load() {
		t.Fatal("prove did not mark")
	}
	g := admit()
	same("proven ones are not counted; the waiting one goes", order(), a, e, g)
	// One that connected a moment ago and has not sent its headers yet is
	// a real client as likely as not: the cap gives way.
	y := admitAged(0)
	same("the old silent one goes", order(), a, e, y)
	z := admitAged(0)
	same("never one that connected within minSilentAge", order(), a, e, y, z)
	if _, _, st := tr.snapshot(); st.evicted != 4 {
		t.Errorf("%d evicted, want 4", st.evicted)
	}
	tr.stop()
}

// Running out of descriptors must not end the API: fasthttp stops serving
// for good on any accept error but a timeout.
func TestAcceptRetriesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := newConnTracker(connLimits{maxConns: 10, maxUnproven: 10, maxUnprovenPerIP: 10, headerTimeout: time.Hour}, t.Logf)
	l := &trackingListener{Listener: &failingListener{Listener: ln, fails: 3}, t: tr}
	defer l.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("accept after EMFILE: %v", err)
	}
	c.Close()
}

type failingListener struct {
	net.Listener
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestHeaderEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"GET / HTTP/1.1\n\n", true},
		{"GET / HTTP/1.1\r\nHost: x\r\n", false},
		{"\r\n\r\n\n\n", false}, // fasthttp skips empty lines before the request line
		{"GET / HTTP/1.1\r\n\r\r\n", false},
		{"GET / HT", false},
	} {
		// Byte by byte and whole must agree.
		var whole, split headerEnd
		got := whole.feed([]byte(tc.in))
		gotSplit := false
		for i := range len(tc.in) {
			if split.feed([]byte{tc.in[i]}) {
				gotSplit = true
				break
			}
		}
		if got != tc.want || gotSplit != tc.want {
			t.Errorf("%q: %v (byte by byte %v), want %v", tc.in, got, gotSplit, tc.want)
		}
	}
}
