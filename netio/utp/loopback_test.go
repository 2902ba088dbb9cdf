package utp

import (
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpMux is a Mux on a UDP socket of its own on 127.0.0.1, with the
// reader goroutine the shared socket would have.
type udpMux struct {
	*Mux
	pc   *net.UDPConn
	addr netip.AddrPort
	done chan struct{}
}

func newUDPMux(tb testing.TB, cfg Config) *udpMux {
	tb.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	if raw, err := pc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
		})
	}
	u := &udpMux{Mux: NewMux(pc, cfg), pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{})}
	go func() {
		defer close(u.done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			u.Deliver(buf[:n], from)
		}
	}()
	tb.Cleanup(func() {
		u.Close()
		pc.Close()
		<-u.done
	})
	return u
}

// streamSink counts and hashes what it reads; done is closed once it has
// want bytes or the connection closed.
type streamSink struct {
	mu     sync.Mutex
	n      int
	want   int
	h      [32]byte
	sum    interface{ Write([]byte) (int, error) }
	hasher interface{ Sum([]byte) []byte }
	err    error
	done   chan struct{}
	closed bool
}

func newStreamSink(want int) *streamSink {
	h := sha256.New()
	return &streamSink{want: want, sum: h, hasher: h, done: make(chan struct{})}
}

func (s *streamSink) Opened(c *Conn) {}
func (s *streamSink) Readable(c *Conn) {
	n := c.Buffered()
	s.sum.Write(c.Peek(n))
	c.Discard(n)
	s.mu.Lock()
	s.n += n
	if s.n >= s.want && !s.closed {
		s.closed = true
		copy(s.h[:], s.hasher.Sum(nil))
		close(s.done)
	}
	s.mu.Unlock()
}
func (s *streamSink) Closed(c *Conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// streamSource writes total bytes of a pattern, a chunk whenever its
// unsent bytes run low, from Do tasks on the loop as peerConn's flushes do.
type streamSource struct {
	total, sent int
	chunk       []byte
	opened      chan *Conn
	closed      chan error
}

func (s *streamSource) Opened(c *Conn) { s.opened <- c; s.pump(c) }
func (s *streamSource) pump(c *Conn) {
	for s.sent < s.total && c.Unsent() < 256<<10 {
		n := min(len(s.chunk), s.total-s.sent)
		c.Write([][]byte{s.chunk[:n]})
		s.sent += n
	}
	if s.sent < s.total {
		time.AfterFunc(time.Millisecond, func() { c.Do(func(err error) { s.pump(c) }) })
	}
}
func (s *streamSource) Readable(c *Conn)          {}
func (s *streamSource) Closed(c *Conn, err error) { s.closed <- err }

// loopbackTransfer moves total bytes from one Mux to another over
// 127.0.0.1 and returns the time it took; the bytes are checked by hash.
func loopbackTransfer(tb testing.TB, total int) time.Duration {
	sink := newStreamSink(total)
	b := newUDPMux(tb, Config{Accept: func(netip.AddrPort) Handler { return sink }})
	a := newUDPMux(tb, Config{})
	chunk := randBytes(7, 64<<10)
	src := &streamSource{total: total, chunk: chunk, opened: make(chan *Conn, 1), closed: make(chan error, 1)}
	want := sha256.New()
	for sent := 0; sent < total; sent += len(chunk) {
		want.Write(chunk[:min(len(chunk), total-sent)])
	}
	start := time.Now()
	if err := a.Dial(b.addr, src); err != nil {
		tb.Fatal(err)
	}
	var c *Conn
	select {
	case c = <-src.opened:
	case err := <-src.closed:
		tb.Fatalf("dial: %v", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("dial timed out")
	}
	select {
	case <-sink.done:
	case <-time.After(5 * time.Minute):
		tb.Fatalf("received %d of %d bytes in 5 minutes", sink.n, total)
	}
	took := time.Since(start)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.n != total || sink.h != [32]byte(want.Sum(nil)) {
		tb.Fatalf("received %d bytes of %d, hash equal %v (closed: %v)", sink.n, total, sink.h == [32]byte(want.Sum(nil)), sink.err)
	}
	c.Close()
	st, dropped := a.Stats()
	tb.Logf("%d MiB in %v: %.1f MB/s; sender resent %d of %d packets, inbox drops %d", total>>20, took.Round(time.Millisecond),
		float64(total)/took.Seconds()/1e6, st.Resent, st.PacketsOut, dropped)
	return took
}

// TestLoopback64MiB: 64 MiB from one Mux to another over 127.0.0.1,
// every byte checked.
func TestLoopback64MiB(t *testing.T) {
	loopbackTransfer(t, 64<<20)
}

// BenchmarkLoopback reports one connection's throughput over loopback.
func BenchmarkLoopback(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	for b.Loop() {
		loopbackTransfer(b, size)
	}
}
