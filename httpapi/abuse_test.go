package httpapi

import (
	"bufio"
	"bytes"
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

// Connections that made one request with a wrong token and then idled
// used to stay as keep-alive connections for 120 s, 1,024 of them taking
// every slot.
func TestIdleAfter401Flood(t *testing.T) {
	const n = 1030
	e := newEnv(t, func(c *Config) { c.Token = floodToken })
	before := readMem(t)
	conns := make([]net.Conn, n)
	defer closeAll(conns)
	var wg sync.WaitGroup
	var next atomic.Int32
	var mu sync.Mutex
	var bad []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 10 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	// Ten failures tell the story; the rest would only take time.
	failing := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bad) >= 10
	}
	t0 := time.Now()
	// Each worker connects and asks at once, fewer at a time than
	// MaxUnprovenConnsPerIP, so that each connection gets its answer:
	// this flood is about what the server keeps afterwards.
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failing() {
					return
				}
				c, err := net.DialTimeout("tcp", e.srv.Addr(), 5*time.Second)
				if err != nil {
					fail("conn %d: %v", i, err)
					return
				}
				conns[i] = c
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, "GET /alldata HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n"); err != nil {
					fail("conn %d: write: %v", i, err)
					continue
				}
				br := bufio.NewReader(c)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					fail("conn %d: %v", i, err)
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var eb errorBody
				if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(body, &eb) != nil || eb.Error == "" || res.Header.Get("WWW-Authenticate") == "" {
					fail("conn %d: %d %q %q", i, res.StatusCode, res.Header, body)
				}
				if !res.Close { // HTTP/1.1: set by "Connection: close" only
					fail("conn %d: 401 without Connection: close", i)
				}
				// We idle; the server must close, at once.
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := br.ReadByte(); err != io.EOF {
					fail("conn %d: after the 401, read gave %v, want EOF", i, err)
				}
			}
		})
	}
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	flooded := time.Since(t0)
	status, lat := goodRequest(t, e)
	if status != http.StatusOK || lat > goodLatency {
		t.Errorf("good client after %d idle 401 connections: status %d after %v", n, status, lat)
	}
	live, unproven, st := e.srv.conns.snapshot()
	after := readMem(t)
	t.Logf("401 flood: %d connections, each one wrong-token request then idle, in %v; good client: %d in %v; server connections left: %d (%d unproven), %d evicted",
		n, flooded.Round(time.Millisecond), status, lat.Round(time.Microsecond), live, unproven, st.evicted)
	t.Logf("401 flood memory: before %v; after %v", before, after)
}

// Uploads without the token used to be read whole before the token was
// checked: 100 of 10 MiB took RSS from 32 MiB to 1.6 GiB.
func TestUnauthenticatedUploads(t *testing.T) {
	const n = 100
	const size = DefaultMaxBody
	// Caps above n: this test is about the bodies, not about eviction.
	e := newEnv(t, func(c *Config) {
		c.Token = floodToken
		c.MaxUnprovenConns = 2 * n
		c.MaxUnprovenConnsPerIP = 2 * n
	})
	chunk := make([]byte, 64<<10)
	before := readMem(t)

	var peakHeap atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap.Load() {
				peakHeap.Store(ms.HeapAlloc)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})

	var uploading, started sync.WaitGroup
	var inFlight atomic.Int32
	var mu sync.Mutex
	var bad []string
	var sentTotal atomic.Int64
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 10 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	t0 := time.Now()
	started.Add(n)
	for i := range n {
		uploading.Go(func() {
			startedOnce := sync.OnceFunc(started.Done)
			defer startedOnce()
			c, err := net.DialTimeout("tcp", e.srv.Addr(), 5*time.Second)
			if err != nil {
				fail("upload %d: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			inFlight.Add(1)
			defer inFlight.Add(-1)
			hdr := fmt.Sprintf("POST /addtorrentfile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: %d\r\n\r\n", size)
			if _, err := io.WriteString(c, hdr); err != nil {
				fail("upload %d: %v", i, err)
				return
			}
			startedOnce()
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				for sent := 0; sent < size; {
					k, err := c.Write(chunk[:min(len(chunk), size-sent)])
					sent += k
					sentTotal.Add(int64(k))
					if err != nil {
						return // the server may close once it has drained enough
					}
				}
			}()
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				fail("upload %d: %v", i, err)
			} else {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var eb errorBody
				if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(body, &eb) != nil || eb.Error == "" || res.Header.Get("WWW-Authenticate") == "" || !res.Close {
					fail("upload %d: %d %q %q", i, res.StatusCode, res.Header, body)
				}
			}
			<-wrote
		})
	}
	started.Wait()
	active := inFlight.Load()
	status, lat := goodRequest(t, e)
	uploading.Wait()
	took := time.Since(t0)
	close(stopSampling)
	sampler.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	after := readMem(t)
	if status != http.StatusOK || lat > goodLatency {
		t.Errorf("good client during the uploads: status %d after %v", status, lat)
	}
	allocated := int64(after.totalAlloc - before.totalAlloc)
	peak := int64(peakHeap.Load()) - int64(before.heap)
	// 100 bodies of 10 MiB would be 1,000 MiB.
	const limit = 64 << 20
	if allocated > limit || peak > limit {
		t.Errorf("uploads without the token: %s allocated, heap peak +%s; want both under %s", mib(allocated), mib(peak), mib(limit))
	}
	if took > 20*time.Second {
		t.Errorf("%d refused uploads took %v", n, took)
	}
	t.Logf("unauthenticated uploads: %d x %s announced, %s sent, in %v; good client: %d in %v with %d uploads in flight",
		n, mib(size), mib(sentTotal.Load()), took.Round(time.Millisecond), status, lat.Round(time.Microsecond), active)
	t.Logf("unauthenticated uploads memory: before %v; after %v; allocated during %s; heap peak +%s", before, after, mib(allocated), mib(peak))

	// With the token the 10 MiB limit is still the real one: a body of
	// exactly the limit is read (and refused as no torrent), one byte more
	// is 413.
	body := bytes.Repeat([]byte("x"), size)
	r := e.must(e.do("POST", "/addtorrentfile", body), http.StatusBadRequest)
	if strings.Contains(r.errMsg(), "larger than") {
		t.Errorf("a body of exactly the limit: %s", r.raw)
	}
	e.must(e.do("POST", "/addtorrentfile", append(body, 'x')), http.StatusRequestEntityTooLarge)
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
