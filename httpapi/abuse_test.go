package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests attack the API the way a client without the token can, on
// loopback (so attacker and real client share one address), and check
// what a user would: the real client is answered within a second, and the
// server holds neither the attacker's connections nor its bytes.

const floodToken = "flood-test-token"

// goodLatency is what the issue allows the real client during a flood.
const goodLatency = time.Second

// goodRequest is the real client: GET /alldata with the token on a new
// connection. It returns the status and how long the answer took; the
// answer must be JSON.
func goodRequest(t *testing.T, e *env) (int, time.Duration) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest("GET", e.base+"/alldata", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	t0 := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("good client: %v (after %v)", err, time.Since(t0))
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	d := time.Since(t0)
	if err != nil {
		t.Fatalf("good client: reading the answer: %v", err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("good client: %d, content type %q: %q", res.StatusCode, ct, body)
	}
	return res.StatusCode, d
}

// mem is the process's memory at one moment.
type mem struct {
	heap, totalAlloc uint64 // bytes: live heap after a GC, allocated ever
	rss              int64  // bytes, VmRSS
}

func readMem(t *testing.T) mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{heap: ms.HeapAlloc, totalAlloc: ms.TotalAlloc, rss: vmRSS(t)}
}

func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Logf("VmRSS %q: %v", rest, err)
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (m mem) String() string {
	return fmt.Sprintf("heap %s, RSS %s", mib(int64(m.heap)), mib(m.rss))
}

// dialAll opens n connections to addr, par at a time, and writes
// first(i) on the i-th when not empty. Bounded: each dial and write has
// 5 s.
func dialAll(t *testing.T, addr string, n, par int, first func(i int) string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var next atomic.Int32
	var failed atomic.Value
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					failed.Store(fmt.Errorf("dial %d: %w", i, err))
					return
				}
				conns[i] = c
				if s := first(i); s != "" {
					c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := io.WriteString(c, s); err != nil {
						failed.Store(fmt.Errorf("write %d: %w", i, err))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		closeAll(conns)
		t.Fatal(err)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// closedBy reads each connection until the server closes it (EOF or a
// reset) or deadline passes, and returns how many were closed and when
// the last of those closings was seen.
func closedBy(conns []net.Conn, deadline time.Time) (closed int, last time.Time) {
	buf := make([]byte, 4096)
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closed++
				last = time.Now()
			}
			break
		}
	}
	return closed, last
}

// rawResponse reads one answer from br and checks that it is JSON with an
// "error" message.
func rawResponse(t *testing.T, br *bufio.Reader, what string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("%s: body: %v", what, err)
	}
	var eb errorBody
	if ct := res.Header.Get("Content-Type"); ct != "application/json" || json.Unmarshal(body, &eb) != nil || eb.Error == "" {
		t.Fatalf("%s: %d, content type %q, body %q: want a JSON error", what, res.StatusCode, ct, body)
	}
	return res, eb.Error
}

// Half-open connections, silent or stopped inside the request line, used
// to take all of fasthttp's 1,024 slots; everyone else got a text/plain
// 503 until they timed out after 60 s.
func TestHalfOpenFlood(t *testing.T) {
	const n = 1100
	const headerTimeout = 2 * time.Second
	e := newEnv(t, func(c *Config) { c.Token = floodToken; c.HeaderTimeout = headerTimeout })
	before := readMem(t)
	t0 := time.Now()
	flood := dialAll(t, e.srv.Addr(), n, 32, func(i int) string {
		if i%2 == 1 {
			return "GET /alldata HT"
		}
		return ""
	})
	defer closeAll(flood)
	opened := time.Now()
	during := readMem(t)

	status, lat := goodRequest(t, e)
	if status != http.StatusOK || lat > goodLatency {
		t.Errorf("good client during the flood: status %d after %v, want 200 within %v", status, lat, goodLatency)
	}
	// The flood is still open on our side; the server must have closed
	// every connection of it, at the latest header timeout after it came.
	closed, last := closedBy(flood, opened.Add(headerTimeout+3*time.Second))
	if closed != n {
		t.Errorf("%d of %d flood connections closed by the server within %v of the flood", closed, n, headerTimeout+3*time.Second)
	}
	_, unproven, st := e.srv.conns.snapshot()
	after := readMem(t)
	t.Logf("half-open flood: %d connections opened in %v; good client: %d in %v; all closed %v after the last opened (header timeout %v): %d evicted for newer ones, %d reaped; unproven left %d",
		n, opened.Sub(t0).Round(time.Millisecond), status, lat.Round(time.Microsecond), last.Sub(opened).Round(time.Millisecond), headerTimeout, st.evicted, st.reaped, unproven)
	t.Logf("half-open flood memory: before %v; flood open %v; after %v", before, during, after)
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
}

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
	res, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
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
// still waiting for its headers, oldest first; one in the middle of a
// request only when nothing else is left.
func TestEvictionOrder(t *testing.T) {
	tr := newConnTracker(connLimits{maxConns: 100, maxUnproven: 3, maxUnprovenPerIP: 3, headerTimeout: time.Hour}, t.Logf)
	var mine []net.Conn
	defer func() { closeAll(mine) }()
	admit := func() *trackedConn {
		a, b := net.Pipe()
		mine = append(mine, a, b)
		c := tr.admit(a)
		if c == nil {
			t.Fatal("refused")
		}
		return c
	}
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
	same("then the oldest", order(), d, e, f)
	f.headerSeen.Store(true)
	tr.prove(d)
	if !d.proven.Load() {
		t.Fatal("prove did not mark")
	}
	g := admit()
	same("proven ones are not counted", order(), e, f, g)
	if _, _, st := tr.snapshot(); st.evicted != 3 {
		t.Errorf("%d evicted, want 3", st.evicted)
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
