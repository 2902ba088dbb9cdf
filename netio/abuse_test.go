package netio

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// seedingNodeWith is seedingNode with network settings.
func seedingNodeWith(t *testing.T, ncfg Config) (*node, *metainfo.MetaInfo) {
	t.Helper()
	data := testData(t, "abuse", []int{500001, 300007})
	_, mi := makeTorrent(t, data, 64<<10)
	n := startNodeWith(t, engine.Config{}, ncfg)
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 20*time.Second)
	return n, mi
}

// heapWatch samples the Go heap in use every 5 ms until stopped and keeps
// the peak: what an attack made us hold, not only what it left behind.
type heapWatch struct {
	base, peak atomic.Uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{stop: make(chan struct{})}
	w.base.Store(ms.HeapInuse)
	w.peak.Store(ms.HeapInuse)
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > w.peak.Load() {
					w.peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return w
}

// growth stops the watch and returns the peak growth over the start, MiB.
func (w *heapWatch) growth() float64 {
	close(w.stop)
	w.done.Wait()
	return float64(w.peak.Load()-w.base.Load()) / (1 << 20)
}

// rssMiB is this process's resident set, for the closing figures.
func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}

// TestMetadataFloodWithoutReading: a peer sends 50,000 ut_metadata requests
// and never reads. It is answered a few times, then closed; our heap does
// not grow by the answers (it grew by 1.3 GiB before).
func TestMetadataFloodWithoutReading(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{})
	rssBefore := rssMiB()
	w := watchHeap()
	c, err := net.DialTimeout("tcp", n.addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4 << 10) // read nothing, hold little
	r := newRaw(t, c)
	r.sendHandshake(mi.InfoHash)
	eh, _ := wire.EncodeExtHandshake(wire.ExtHandshake{M: map[string]int{"ut_metadata": 3}})
	r.send(wire.AppendExtended(nil, 0, eh))
	req := wire.AppendExtended(nil, 2, ext.AppendMetadataMsg(nil, ext.MetadataMsg{Type: ext.MetadataRequest, Piece: 0}))
	var flood []byte
	for range 50000 {
		flood = append(flood, req...)
	}
	start := time.Now()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	written, werr := c.Write(flood) // fails once we close the connection
	growth := w.growth()
	r.expectClosed("metadata flood", 10*time.Second)
	t.Logf("flood of %d bytes: %d written before %v, closed after %v; heap peak +%.1f MiB; RSS %.0f -> %.0f MiB",
		len(flood), written, werr, time.Since(start).Round(time.Millisecond), growth, rssBefore, rssMiB())
	if growth > 32 {
		t.Fatalf("heap grew by %.1f MiB answering a peer that never reads", growth)
	}
}

// TestChokedRequestsWithoutReading: every request while choked earns the
// peer a REJECT (BEP 6). One that sends requests without ever reading is
// closed at the unsent bound instead of making us queue its rejects.
func TestChokedRequestsWithoutReading(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{})
	w := watchHeap()
	c, err := net.DialTimeout("tcp", n.addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4 << 10)
	r := newRaw(t, c)
	r.sendHandshake(mi.InfoHash) // never interested: stays choked
	one := wire.AppendRequest(nil, 0, 0, 16384)
	chunk := make([]byte, 0, len(one)*4096)
	for range 4096 {
		chunk = append(chunk, one...)
	}
	var sent int
	deadline := time.Now().Add(20 * time.Second)
	c.SetWriteDeadline(deadline)
	for sent < 64<<20 && time.Now().Before(deadline) {
		k, err := c.Write(chunk)
		sent += k
		if err != nil {
			break
		}
	}
	growth := w.growth()
	r.expectClosed("choked request flood", 10*time.Second)
	t.Logf("sent %d MiB of requests while choked, never reading: closed; heap peak +%.1f MiB", sent>>20, growth)
	if sent >= 64<<20 {
		t.Fatal("64 MiB of requests from a peer that reads nothing and still connected")
	}
	if growth > 48 {
		t.Fatalf("heap grew by %.1f MiB queueing rejects", growth)
	}
}

// TestIdleConnectionFlood: idle connections that never handshake are capped
// per address and in all; the oldest go first, so an honest peer that
// arrives during the flood is answered at once.
func TestIdleConnectionFlood(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{MaxPending: 64, MaxPendingPerIP: 16, HandshakeTimeout: time.Minute})
	const flood = 300
	conns := make([]net.Conn, 0, flood)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range flood {
		c, err := net.DialTimeout("tcp", n.addr().String(), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "the flood to be admitted", 10*time.Second, func() bool { return n.srv.pending.len() > 0 })
	start := time.Now()
	r := dialRaw(t, n.addr().String(), mi.InfoHash)
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := r.readHandshake(); err != nil {
		t.Fatalf("honest peer during an idle flood: %v", err)
	}
	answered := time.Since(start)
	if answered > time.Second {
		t.Fatalf("honest peer answered after %v, want under 1 s", answered)
	}
	if p := n.srv.pending.len(); p > 16 {
		t.Fatalf("%d connections pending from one address, cap 16", p)
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	t.Logf("%d idle connections: %d closed by us, honest handshake answered in %v", flood, closed, answered.Round(time.Millisecond))
	if closed < flood-16 {
		t.Fatalf("only %d of %d idle connections closed; at most 16 may wait", closed, flood)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestUnrequestedDataClosesPeer: piece data nobody asked for costs the
// sender its connection within a few blocks.
func TestUnrequestedDataClosesPeer(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{})
	r := dialRaw(t, n.addr().String(), mi.InfoHash)
	if err := r.readHandshake(); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 16384)
	sent := 0
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for ; sent < 1000; sent++ {
		if _, err := r.c.Write(wire.AppendPiece(nil, 0, 0, block)); err != nil {
			break
		}
	}
	r.expectClosed("unrequested data", 10*time.Second)
	t.Logf("closed after %d unrequested blocks were written", sent)
}

// TestPeerPortSurvivesFDExhaustion runs a seeding node in a child process
// whose descriptor limit is 64, floods its peer port with idle connections
// until accept fails with EMFILE, and checks that the node says so, keeps
// its port, and accepts an honest peer again soon after the flood ends.
func TestPeerPortSurvivesFDExhaustion(t *testing.T) {
	if os.Getenv("GTS_FD_CHILD") != "" {
		t.Skip("the child runs TestFDChild")
	}
	t.Setenv("GTS_FD_CHILD", "1")
	child := peertest.Start(t, os.Args[0], "-test.run", "^TestFDChild$", "-test.v")
	expect := func(prefix string, timeout time.Duration) string {
		t.Helper()
		line, err := child.WaitLine(prefix, timeout)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.TrimPrefix(line, prefix))
	}
	var addr, ih string
	fmt.Sscanf(expect("READY", 30*time.Second), "%s %s", &addr, &ih)
	hash, err := metainfo.ParseHash(ih)
	if err != nil {
		t.Fatalf("child said %q %q: %v", addr, ih, err)
	}
	// From eight addresses: one alone is held to 32 waiting connections,
	// too few to run the child out of descriptors.
	var flood []net.Conn
	for i := range 200 {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			break
		}
		flood = append(flood, c)
	}
	msg := expect("LISTEN_ERROR", 15*time.Second)
	t.Logf("%d idle connections; the node said: %s", len(flood), msg)
	if !strings.Contains(msg, "file descriptors") {
		t.Fatalf("listen error %q does not say what ran out", msg)
	}
	ended := time.Now()
	for _, c := range flood {
		c.Close()
	}
	r := dialRaw(t, addr, hash)
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := r.readHandshake(); err != nil {
		t.Fatalf("honest peer after the flood: %v", err)
	}
	recovered := time.Since(ended)
	expect("LISTEN_OK", 10*time.Second)
	t.Logf("honest peer answered %v after the flood ended", recovered.Round(time.Millisecond))
	if recovered > 3*time.Second {
		t.Fatalf("accepting again took %v after the flood ended, want under 3 s", recovered)
	}
}

// TestFDChild is the node of TestPeerPortSurvivesFDExhaustion, in its own
// process with 64 descriptors; it reports on stdout until the parent ends
// it (or two minutes pass).
func TestFDChild(t *testing.T) {
	if os.Getenv("GTS_FD_CHILD") == "" {
		t.Skip("only as TestPeerPortSurvivesFDExhaustion's child")
	}
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// No handshake timeout during the test: the flood must hold its
	// descriptors until the parent closes it.
	n, mi := seedingNodeWith(t, Config{HandshakeTimeout: 5 * time.Minute})
	fmt.Printf("READY %s %s\n", n.addr(), mi.InfoHash)
	go func() {
		last := ""
		for {
			if e := n.client.ListenError(); e != last {
				if e == "" {
					fmt.Println("LISTEN_OK")
				} else {
					fmt.Println("LISTEN_ERROR " + e)
				}
				last = e
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Minute)
}
