package tracker

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// udpTracker is an in-test BEP 15 tracker on a loopback socket.
type udpTracker struct {
	pc   *net.UDPConn
	addr netip.AddrPort
	done chan struct{}

	mu        sync.Mutex
	drop      int    // drop this many incoming packets before answering
	strayTx   bool   // precede each reply with one carrying a wrong transaction id
	failWith  string // answer announces with an error action
	forgetIDs bool   // answer unknown connection ids with an error (a restarted tracker)
	ids       map[uint64]bool
	received  int // packets received, dropped ones included
	connects  int // connect requests answered
	announces [][]byte
	peers     []netip.AddrPort
}

func newUDPTracker(t *testing.T, network, laddr string) *udpTracker {
	t.Helper()
	pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr)))
	if err != nil {
		t.Skipf("SKIP (no %s loopback): %v", network, err)
	}
	ut := &udpTracker{pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{}), ids: map[uint64]bool{}}
	go ut.serve()
	t.Cleanup(func() { pc.Close(); <-ut.done })
	return ut
}

func (ut *udpTracker) url() string { return "udp://" + ut.addr.String() + "/announce" }

func (ut *udpTracker) serve() {
	defer close(ut.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := ut.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		ut.mu.Lock()
		ut.received++
		if ut.drop > 0 {
			ut.drop--
			ut.mu.Unlock()
			continue
		}
		reply := ut.handle(append([]byte(nil), buf[:n]...))
		stray := ut.strayTx
		ut.mu.Unlock()
		if reply == nil {
			continue
		}
		if stray {
			bad := append([]byte(nil), reply...)
			bad[7] ^= 0xff
			ut.pc.WriteToUDPAddrPort(bad, from)
		}
		ut.pc.WriteToUDPAddrPort(reply, from)
	}
}

func (ut *udpTracker) handle(p []byte) []byte {
	if len(p) < 16 {
		return nil
	}
	connID, action, tx := binary.BigEndian.Uint64(p), binary.BigEndian.Uint32(p[8:]), p[12:16]
	errReply := func(msg string) []byte {
		return append(append([]byte{0, 0, 0, 3}, tx...), msg...)
	}
	switch {
	case action == actionConnect && connID == udpProtocolID:
		ut.connects++
		id := rand.Uint64()
		ut.ids[id] = true
		return binary.BigEndian.AppendUint64(append([]byte{0, 0, 0, 0}, tx...), id)
	case action == actionAnnounce && len(p) >= udpAnnounceLen:
		if !ut.ids[connID] {
			if ut.forgetIDs {
				return errReply("connection id mismatch")
			}
			return nil
		}
		ut.announces = append(ut.announces, p)
		if ut.failWith != "" {
			return errReply(ut.failWith)
		}
		r := append([]byte{0, 0, 0, 1}, tx...)
		r = binary.BigEndian.AppendUint32(r, 1800) // interval
		r = binary.BigEndian.AppendUint32(r, 7)    // leechers
		r = binary.BigEndian.AppendUint32(r, 3)    // seeders
		return appendCompact(r, ut.peers, ut.addr.Addr().Is6())
	}
	return nil
}

func (ut *udpTracker) set(f func(*udpTracker)) {
	ut.mu.Lock()
	defer ut.mu.Unlock()
	f(ut)
}

func (ut *udpTracker) stats() (received, connects, announces int) {
	ut.mu.Lock()
	defer ut.mu.Unlock()
	return ut.received, ut.connects, len(ut.announces)
}

// fakeClock is an injectable clock safe for use from client goroutines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func fastUDP(clock *fakeClock) Config {
	return Config{UDP: UDPConfig{BaseTimeout: 50 * time.Millisecond, MaxRetries: 3, MaxTotal: 5 * time.Second}, Now: clock.Now}
}

func TestUDPAnnounceRequestAndReply(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	peers := []netip.AddrPort{netip.MustParseAddrPort("10.1.2.3:6881"), netip.MustParseAddrPort("10.1.2.4:51413")}
	ut.set(func(u *udpTracker) { u.peers = peers })
	c := testClient(t, fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	req := NewRequest(metainfo.Hash{0xaa, 0xbb}, [20]byte{'-', 'G', 'T', '0'}, 51413)
	req.Uploaded, req.Downloaded, req.Left = 11, 22, 33
	req.Event, req.Key, req.NumWant = Completed, 0x01020304, 25
	resp, err := c.Announce(context.Background(), ut.url(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Interval != 30*time.Minute || resp.Leechers != 7 || resp.Seeders != 3 || len(resp.Peers) != 2 ||
		resp.Peers[0] != peers[0] || resp.Peers[1] != peers[1] {
		t.Fatalf("response %+v", resp)
	}
	ut.mu.Lock()
	p := ut.announces[0]
	ut.mu.Unlock()
	if len(p) != udpAnnounceLen {
		t.Fatalf("announce is %d bytes, want 98 (no URL data for /announce)", len(p))
	}
	be := binary.BigEndian
	if [20]byte(p[16:36]) != req.InfoHash || [20]byte(p[36:56]) != req.PeerID ||
		be.Uint64(p[56:]) != 22 || be.Uint64(p[64:]) != 33 || be.Uint64(p[72:]) != 11 ||
		be.Uint32(p[80:]) != 1 || be.Uint32(p[84:]) != 0 || be.Uint32(p[88:]) != 0x01020304 ||
		be.Uint32(p[92:]) != 25 || be.Uint16(p[96:]) != 51413 {
		t.Fatalf("announce fields wrong: %x", p)
	}
}

func TestUDPConnectionIDReuse(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	c := testClient(t, fastUDP(clock))
	announce := func() {
		t.Helper()
		if _, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{Port: 1}); err != nil {
			t.Fatal(err)
		}
	}
	announce()
	clock.Advance(59 * time.Second)
	announce()
	if _, connects, announces := ut.stats(); connects != 1 || announces != 2 {
		t.Fatalf("within a minute: %d connects for %d announces, want 1", connects, announces)
	}
	clock.Advance(2 * time.Second)
	announce()
	if _, connects, _ := ut.stats(); connects != 2 {
		t.Fatalf("after expiry: %d connects, want 2", connects)
	}
	// A restarted tracker rejects our cached id with an error; the client
	// must reconnect once rather than report the failure.
	ut.set(func(u *udpTracker) { u.ids = map[uint64]bool{}; u.forgetIDs = true })
	announce()
	if _, connects, announces := ut.stats(); connects != 3 || announces != 4 {
		t.Fatalf("after tracker restart: %d connects, %d announces", connects, announces)
	}
}

func TestUDPRetransmitsAndIgnoresStrays(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	ut.set(func(u *udpTracker) {
		u.drop = 2 // first connect and its first retransmission vanish
		u.strayTx = true
		u.peers = []netip.AddrPort{netip.MustParseAddrPort("10.0.0.9:9")}
	})
	c := testClient(t, fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	resp, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 1 || resp.Peers[0].Port() != 9 {
		t.Fatalf("peers %v", resp.Peers)
	}
	if received, connects, announces := ut.stats(); received != 4 || connects != 1 || announces != 1 {
		t.Fatalf("received %d packets, %d connects, %d announces; want 4, 1, 1", received, connects, announces)
	}
}

func TestUDPGivesUp(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	ut.set(func(u *udpTracker) { u.drop = 1 << 30 })
	cfg := Config{UDP: UDPConfig{BaseTimeout: 20 * time.Millisecond, MaxRetries: 2, MaxTotal: 10 * time.Second}}
	c := testClient(t, cfg)
	start := time.Now()
	_, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// 20 + 40 + 80 ms of waiting; allow generous slack for a loaded machine.
	if received, _, _ := ut.stats(); received != 3 || elapsed < 140*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("%d sends in %v, want 3 sends in about 140 ms", received, elapsed)
	}
	// MaxTotal cuts the spec's schedule short.
	cfg.UDP = UDPConfig{BaseTimeout: 50 * time.Millisecond, MaxTotal: 200 * time.Millisecond}
	c2 := testClient(t, cfg)
	start = time.Now()
	if _, err := c2.Announce(context.Background(), ut.url(), AnnounceRequest{}); !errors.Is(err, ErrTimeout) ||
		time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	// The caller's cancellation is reported as such, not as a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c2.Announce(ctx, ut.url(), AnnounceRequest{}); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestUDPErrorAction(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	ut.set(func(u *udpTracker) { u.failWith = "torrent not registered" })
	c := testClient(t, fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	_, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{})
	te, ok := errors.AsType[*TrackerError](err)
	if !ok || te.Reason != "torrent not registered" || !errors.Is(err, ErrTrackerFailure) {
		t.Fatalf("err = %#v", err)
	}
}

func TestUDPURLData(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	c := testClient(t, fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	long := "/announce?passkey=" + string(bytesOf('k', 300)) // needs two 255-byte options
	if _, err := c.Announce(context.Background(), "udp://"+ut.addr.String()+long, AnnounceRequest{}); err != nil {
		t.Fatal(err)
	}
	ut.mu.Lock()
	p := ut.announces[0][udpAnnounceLen:]
	ut.mu.Unlock()
	var got []byte
	for len(p) >= 2 && p[0] == bep41URLData && len(p) >= 2+int(p[1]) {
		got = append(got, p[2:2+int(p[1])]...)
		p = p[2+int(p[1]):]
	}
	if string(got) != long || len(p) != 0 {
		t.Fatalf("BEP 41 URL data = %q (+%d stray bytes), want %q", got, len(p), long)
	}
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestUDPIPv6PeerFormat(t *testing.T) {
	ut := newUDPTracker(t, "udp6", "[::1]:0")
	peers := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:6881"), netip.MustParseAddrPort("[2001:db8::2]:6882")}
	ut.set(func(u *udpTracker) { u.peers = peers })
	c := testClient(t, fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	resp, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 2 || resp.Peers[0] != peers[0] || resp.Peers[1] != peers[1] {
		t.Fatalf("peers %v, want %v", resp.Peers, peers)
	}
}

func TestUDPCloseInterruptsAndConcurrentUse(t *testing.T) {
	ut := newUDPTracker(t, "udp4", "127.0.0.1:0")
	c := NewClient(fastUDP(&fakeClock{now: time.Unix(1e9, 0)}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{Port: 5})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ut.set(func(u *udpTracker) { u.drop = 1 << 30 })
	res := make(chan error, 1)
	go func() {
		_, err := c.Announce(context.Background(), ut.url(), AnnounceRequest{})
		res <- err
	}()
	time.Sleep(30 * time.Millisecond)
	c.Close()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("announce during Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not interrupt a UDP announce")
	}
}

func TestRetransmitSchedule(t *testing.T) {
	cfg := Config{}.withDefaults().UDP
	if cfg.BaseTimeout != 15*time.Second || cfg.MaxRetries != 8 || cfg.MaxTotal != time.Minute {
		t.Fatalf("defaults %+v, want the spec's 15 s and 8 retries under a 60 s budget", cfg)
	}
	for n, want := range []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, time.Minute} {
		if got := retransmitWait(cfg, n); got != want {
			t.Errorf("wait %d = %v, want %v", n, got, want)
		}
	}
	cfg.MaxTotal = math.MaxInt64
	if got := retransmitWait(cfg, 1000); got <= 0 {
		t.Errorf("wait overflowed to %v", got)
	}
	if got := (Config{UDP: UDPConfig{MaxRetries: -1}}).withDefaults().UDP.MaxRetries; got != 0 {
		t.Errorf("negative MaxRetries gave %d retries, want none", got)
	}
}
