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

// readAnswer reads one answer and its whole body from br.
func readAnswer(t *testing.T, br *bufio.Reader, what string) (*http.Response, []byte) {
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
	return res, body
}

// rawResponse reads one answer from br and checks that it is JSON with an
// "error" message.
func rawResponse(t *testing.T, br *bufio.Reader, what string) (*http.Response, string) {
	t.Helper()
	res, body := readAnswer(t, br, what)
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
