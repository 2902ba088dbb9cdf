package utp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
	"time"
)

// simNet is an in-memory network of endpoints on a fake clock: datagrams
// take latency plus jitter (so they reorder), and a seeded random source
// loses and duplicates some. Everything runs on the test's goroutine.
type simNet struct {
	t        *testing.T
	now      time.Duration
	rng      *rand.Rand
	loss     float64
	dup      float64
	latency  time.Duration
	jitter   time.Duration
	flights  []flight
	eps      map[netip.AddrPort]*endpoint
	tasks    []func()
	nextTick time.Duration
	sent     int
}

type flight struct {
	b        []byte
	from, to netip.AddrPort
	at       time.Duration
	n        int // send order, to keep the sort stable
}

func newSimNet(t *testing.T, seed uint64) *simNet {
	return &simNet{t: t, rng: rand.New(rand.NewPCG(seed, 1)), latency: 5 * time.Millisecond,
		eps: map[netip.AddrPort]*endpoint{}}
}

func (n *simNet) endpoint(addr string, cfg Config) *endpoint {
	ap := netip.MustParseAddrPort(addr)
	var e *endpoint
	send := func(b []byte, to netip.AddrPort) {
		if n.rng.Float64() < n.loss {
			return
		}
		copies := 1
		if n.rng.Float64() < n.dup {
			copies = 2
		}
		for range copies {
			at := n.now + n.latency
			if n.jitter > 0 {
				at += time.Duration(n.rng.Int64N(int64(n.jitter)))
			}
			n.sent++
			n.flights = append(n.flights, flight{append([]byte(nil), b...), ap, to, at, n.sent})
		}
	}
	post := func(f func()) error { n.tasks = append(n.tasks, f); return nil }
	e = newEndpoint(cfg, send, post, func() time.Duration { return n.now })
	n.eps[ap] = e
	return e
}

// step advances the clock to the next arrival or tick and runs what is
// due, as a Mux's loop would.
func (n *simNet) step() {
	sort.SliceStable(n.flights, func(i, j int) bool {
		if n.flights[i].at != n.flights[j].at {
			return n.flights[i].at < n.flights[j].at
		}
		return n.flights[i].n < n.flights[j].n
	})
	next := n.nextTick
	if len(n.flights) > 0 && n.flights[0].at < next {
		next = n.flights[0].at
	}
	if len(n.tasks) == 0 && next > n.now {
		n.now = next
	}
	k := 0
	for k < len(n.flights) && n.flights[k].at <= n.now {
		k++
	}
	due := n.flights[:k]
	n.flights = append([]flight(nil), n.flights[k:]...)
	for _, f := range due {
		if e := n.eps[f.to]; e != nil {
			e.receive(f.b, f.from)
		}
	}
	for len(n.tasks) > 0 {
		tasks := n.tasks
		n.tasks = nil
		for _, f := range tasks {
			f()
		}
	}
	for _, e := range n.eps {
		e.now = n.now
		e.takeWakes()
		e.endRound()
	}
	if n.now >= n.nextTick {
		for _, e := range n.eps {
			e.tick()
		}
		n.nextTick = n.now + tickEvery
	}
}

// run steps until done or the simulated time passes limit.
func (n *simNet) run(limit time.Duration, done func() bool) {
	n.t.Helper()
	end := n.now + limit
	for steps := 0; !done(); steps++ {
		if n.now > end || steps > 50_000_000 {
			n.t.Fatalf("not done after %v simulated (%d steps)", limit, steps)
		}
		n.step()
	}
}

// sink is a Handler that reads everything, optionally at most max bytes
// per Readable, and records what happened.
type sink struct {
	conn    *Conn
	opened  bool
	closed  bool
	err     error
	got     bytes.Buffer
	max     int // bytes read per Readable; 0: all
	paused  bool
	toWrite []byte
}

func (s *sink) Opened(c *Conn) {
	s.conn, s.opened = c, true
	if len(s.toWrite) > 0 {
		c.Write([][]byte{s.toWrite})
	}
}

func (s *sink) Readable(c *Conn) {
	if s.paused {
		return
	}
	n := c.Buffered()
	if s.max > 0 && n > s.max {
		n = s.max
		c.Wake()
	}
	s.got.Write(c.Peek(n))
	c.Discard(n)
}

func (s *sink) Closed(c *Conn, err error) { s.closed, s.err = true, err }

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func acceptInto(s *sink) func(netip.AddrPort) Handler {
	return func(netip.AddrPort) Handler { return s }
}

// transfer dials b from a, sends data from a and checks it arrives whole
// at b, then closes a and checks b sees the end.
func transfer(t *testing.T, n *simNet, data []byte, limit time.Duration, cfg Config) (*sink, *sink) {
	t.Helper()
	recv := &sink{}
	n.endpoint("10.0.0.2:6881", Config{Accept: acceptInto(recv)})
	a := n.endpoint("10.0.0.1:6881", cfg)
	send := &sink{toWrite: data}
	a.dial(netip.MustParseAddrPort("10.0.0.2:6881"), send)
	n.run(limit, func() bool { return recv.got.Len() >= len(data) || send.closed || recv.closed })
	if !bytes.Equal(recv.got.Bytes(), data) {
		t.Fatalf("got %d bytes, want %d (equal prefix: %v); sender closed %v %v", recv.got.Len(), len(data),
			bytes.HasPrefix(data, recv.got.Bytes()), send.closed, send.err)
	}
	send.conn.Close()
	n.run(limit, func() bool { return recv.closed })
	if !errors.Is(recv.err, io.EOF) || !send.closed || send.err != nil {
		t.Fatalf("receiver closed with %v, sender with %v (%v)", recv.err, send.err, send.closed)
	}
	// Both sides forget the connection: the FIN is acknowledged, or
	// lingering ends.
	n.run(2*linger, func() bool { return len(n.eps[netip.MustParseAddrPort("10.0.0.1:6881")].conns) == 0 })
	return send, recv
}

func TestSimTransferClean(t *testing.T) {
	n := newSimNet(t, 1)
	transfer(t, n, randBytes(1, 4<<20), time.Minute, Config{})
}

func TestSimTransferLossReorderDup(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		n := newSimNet(t, seed)
		n.loss, n.dup, n.jitter = 0.05, 0.03, 8*time.Millisecond
		transfer(t, n, randBytes(seed, 1<<20+777), 5*time.Minute, Config{})
	}
}

// Heavy loss, handshake included: the SYN and FIN are retransmitted too.
func TestSimTransferHeavyLoss(t *testing.T) {
	n := newSimNet(t, 9)
	n.loss, n.jitter = 0.25, 3*time.Millisecond
	transfer(t, n, randBytes(9, 200<<10), 10*time.Minute, Config{SynTimeouts: 8})
}

// A receiver that does not read holds at most its window; once it reads
// again the rest comes (a window update or a probe reopens it).
func TestSimReceiveWindowBounds(t *testing.T) {
	n := newSimNet(t, 3)
	recv := &sink{paused: true}
	n.endpoint("10.0.0.2:1", Config{Accept: acceptInto(recv), RecvWindow: 64 << 10})
	a := n.endpoint("10.0.0.1:1", Config{})
	data := randBytes(3, 1<<20)
	send := &sink{toWrite: data}
	a.dial(netip.MustParseAddrPort("10.0.0.2:1"), send)
	n.run(10*time.Second, func() bool { return n.now > 5*time.Second })
	if b := recv.conn.Buffered() + recv.conn.oooBytes; b > 64<<10 || b < 32<<10 {
		t.Fatalf("receiver holds %d bytes with a 64 KiB window", b)
	}
	recv.paused = false
	recv.max = 5000
	recv.conn.Wake()
	n.run(time.Minute, func() bool { return recv.got.Len() >= len(data) })
	if !bytes.Equal(recv.got.Bytes(), data) {
		t.Fatal("bytes differ")
	}
}

func TestSimBothWays(t *testing.T) {
	n := newSimNet(t, 5)
	n.loss, n.jitter = 0.02, 4*time.Millisecond
	up, down := randBytes(5, 500<<10), randBytes(6, 700<<10)
	recv := &sink{toWrite: down}
	n.endpoint("10.0.0.2:1", Config{Accept: acceptInto(recv)})
	a := n.endpoint("10.0.0.1:1", Config{})
	send := &sink{toWrite: up}
	a.dial(netip.MustParseAddrPort("10.0.0.2:1"), send)
	n.run(5*time.Minute, func() bool {
		if n.now > 4*time.Minute {
			t.Logf("%d/%d %d/%d\n%s\n%s", recv.got.Len(), len(up), send.got.Len(), len(down), send.conn.debug(), recv.conn.debug())
		}
		return recv.got.Len() >= len(up) && send.got.Len() >= len(down)
	})
	if !bytes.Equal(recv.got.Bytes(), up) || !bytes.Equal(send.got.Bytes(), down) {
		t.Fatal("bytes differ")
	}
}

// A SYN nobody answers fails the dial after the SYN timeouts (3 s).
func TestSimSynTimeout(t *testing.T) {
	n := newSimNet(t, 1)
	a := n.endpoint("10.0.0.1:1", Config{})
	s := &sink{}
	a.dial(netip.MustParseAddrPort("10.0.0.9:1"), s)
	n.run(10*time.Second, func() bool { return s.closed })
	if s.opened || !errors.Is(s.err, ErrTimeout) || n.now < 3*time.Second || n.now > 4*time.Second {
		t.Fatalf("opened %v err %v at %v", s.opened, s.err, n.now)
	}
	if len(a.conns) != 0 {
		t.Fatal("the failed dial is still in the table")
	}
}

// An endpoint that refuses (Accept nil) stays silent; a packet of an
// unknown connection gets a RESET, which closes the dialer's.
func TestSimRefuseAndReset(t *testing.T) {
	n := newSimNet(t, 1)
	n.endpoint("10.0.0.2:1", Config{Accept: func(netip.AddrPort) Handler { return nil }})
	a := n.endpoint("10.0.0.1:1", Config{})
	s := &sink{}
	a.dial(netip.MustParseAddrPort("10.0.0.2:1"), s)
	n.run(10*time.Second, func() bool { return s.closed })
	if !errors.Is(s.err, ErrTimeout) {
		t.Fatalf("refused dial: %v", s.err)
	}

	recv := &sink{}
	b := n.endpoint("10.0.0.3:1", Config{Accept: acceptInto(recv)})
	s = &sink{}
	a.dial(netip.MustParseAddrPort("10.0.0.3:1"), s)
	n.run(time.Second, func() bool { return s.opened })
	for _, c := range b.conns {
		b.remove(c) // the peer forgets the connection, as after a restart
	}
	s.conn.Write([][]byte{[]byte("hello")})
	n.run(10*time.Second, func() bool { return s.closed })
	if !errors.Is(s.err, ErrReset) {
		t.Fatalf("after the peer forgot: %v", s.err)
	}
}

// Both ends' Close: no connection stays behind.
func TestSimCloseBeforeConnected(t *testing.T) {
	n := newSimNet(t, 1)
	a := n.endpoint("10.0.0.1:1", Config{})
	s := &sink{}
	c := a.dial(netip.MustParseAddrPort("10.0.0.9:1"), s)
	c.Close()
	n.step()
	if !s.closed || s.err != nil || len(a.conns) != 0 {
		t.Fatalf("closed %v err %v conns %d", s.closed, s.err, len(a.conns))
	}
	if c.Do(func(error) {}) == nil {
		t.Fatal("Do on a closed connection was accepted")
	}
}

func (c *Conn) debug() string {
	return fmt.Sprintf("state %d seq %d outStart %d inflight %d resends %d unsent %d cwnd %d peerWnd %d rtoAt %v ack %d ooo %d buffered %d rto %v timeouts %d",
		c.state, c.seqNr, c.outStart, c.inflight, c.resends, c.Unsent(), c.cwnd, c.peerWnd, c.rtoAt, c.ackNr, len(c.ooo), c.Buffered(), c.rto, c.timeouts)
}

// LEDBAT: at the base delay the window grows (doubling in slow start,
// then by up to 3000 bytes a window); with queueing delay over the
// target it shrinks, never under two packets; a window the sender does
// not fill does not grow.
func TestLEDBATWindow(t *testing.T) {
	n := newSimNet(t, 1)
	e := n.endpoint("10.0.0.1:1", Config{})
	c := e.newConn(netip.MustParseAddrPort("10.0.0.2:1"), 1, 2, &sink{})
	c.state, c.rtt = stateConnected, 50*time.Millisecond
	const base = 1_000_000
	c.updateCwnd(1000, base) // the first sample sets the base
	c.cwndFull = false
	w := c.cwnd
	c.updateCwnd(c.mss, base)
	if c.cwnd != w {
		t.Fatalf("an unfilled window grew from %d to %d", w, c.cwnd)
	}
	c.cwndFull = true
	c.updateCwnd(c.mss, base)
	if c.cwnd != w+c.mss {
		t.Fatalf("slow start: %d after %d acked from %d", c.cwnd, c.mss, w)
	}
	c.slowStart = false
	w = c.cwnd
	c.updateCwnd(c.cwnd, base+10) // a whole window acked at 10 µs of queueing
	if g := c.cwnd - w; g < gainPerRTT*9/10 || g > gainPerRTT {
		t.Fatalf("a window at no delay grew by %d, want about %d", g, gainPerRTT)
	}
	// 40 ms of queueing (within the RTT clamp) over a target of 100 ms:
	// still growing, by less.
	w = c.cwnd
	c.updateCwnd(c.cwnd, base+40_000)
	if g := c.cwnd - w; g <= 0 || g >= gainPerRTT*9/10 {
		t.Fatalf("at 40 ms of delay the window grew by %d", g)
	}
	// Over the target: it shrinks, down to two packets and no further.
	c.rtt = time.Second
	for range 1000 {
		w = c.cwnd
		c.updateCwnd(c.cwnd, base+300_000)
		if c.cwnd > w {
			t.Fatalf("at 300 ms of delay the window grew from %d to %d", w, c.cwnd)
		}
	}
	if c.cwnd != 2*c.mss {
		t.Fatalf("window %d after long delay, want the floor %d", c.cwnd, 2*c.mss)
	}
}
