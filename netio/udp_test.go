package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gotorrentserver/engine/dht"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

func loopbackUDP(t *testing.T) *UDP {
	t.Helper()
	u, err := listenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func sender(t *testing.T, to *UDP) func([]byte) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	dst := to.LocalAddr().(*net.UDPAddr).AddrPort()
	return func(b []byte) {
		if _, err := pc.WriteToUDPAddrPort(b, dst); err != nil {
			t.Fatal(err)
		}
	}
}

func trackerReply(action, txid uint32, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, action)
	return append(binary.BigEndian.AppendUint32(b, txid), rest...)
}

// Each datagram goes where its first bytes say; what nobody listens for is
// dropped and counted, by kind.
func TestUDPDemuxRoutes(t *testing.T) {
	u := loopbackUDP(t)
	route := u.DHT()
	if route == nil || u.DHT() != nil {
		t.Fatal("the DHT route must be taken once")
	}
	got := make(chan []byte, 4)
	if !u.Expect(7, func(p []byte, _ netip.AddrPort) { got <- append([]byte(nil), p...) }) || u.Expect(7, nil) {
		t.Fatal("a transaction id must be expected once")
	}
	send := sender(t, u)
	send([]byte("d1:y1:qe"))                // KRPC
	send(trackerReply(1, 7, 9, 9))          // expected reply
	send(trackerReply(1, 8))                // nobody expects 8
	send([]byte{0x41, 1, 2, 3})             // uTP SYN: no uTP yet
	send([]byte{0xff, 0, 0, 0, 0, 0, 0, 0}) // nothing we speak
	buf := make([]byte, 100)
	n, from, err := route.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "d1:y1:qe" || !from.Addr().IsLoopback() {
		t.Fatalf("DHT read %q from %v, %v", buf[:n], from, err)
	}
	select {
	case p := <-got:
		if string(p) != string(trackerReply(1, 7, 9, 9)) {
			t.Fatalf("tracker got %x", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the tracker reply never came")
	}
	waitFor(t, "every datagram counted", 5*time.Second, func() bool { return u.Stats().Received == 5 })
	want := UDPStats{Received: 5, Tracker: 1, DHT: 1, NoListener: 2, Unknown: 1}
	if s := u.Stats(); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	u.Forget(7)
	send(trackerReply(1, 7))
	waitFor(t, "a forgotten id counted", 5*time.Second, func() bool { return u.Stats().NoListener == 3 })
}

// A consumer that does not read loses datagrams past its queue; the reader
// goes on serving the others.
func TestUDPSlowConsumerLosesNotBlocks(t *testing.T) {
	u := loopbackUDP(t)
	route := u.DHT()
	defer route.Close()
	var delivered atomic.Bool
	u.Expect(42, func([]byte, netip.AddrPort) { delivered.Store(true) })
	send := sender(t, u)
	for range dhtQueue + 200 {
		send([]byte("d1:y1:re"))
		time.Sleep(10 * time.Microsecond) // the kernel's buffer is not what is under test
	}
	waitFor(t, "the full queue to drop", 10*time.Second, func() bool { return u.Stats().QueueFull > 0 })
	send(trackerReply(0, 42))
	waitFor(t, "the tracker reply past the stuck DHT", 5*time.Second, delivered.Load)
	if s := u.Stats(); s.DHT != dhtQueue {
		t.Fatalf("queued %d for the DHT, want the bound %d (%+v)", s.DHT, dhtQueue, s)
	}
}

// A closed route reads net.ErrClosed, its datagrams count as having no
// listener, and the route can be taken again.
func TestUDPRouteClose(t *testing.T) {
	u := loopbackUDP(t)
	r := u.DHT()
	r.Close()
	if _, _, err := r.ReadFromUDPAddrPort(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	sender(t, u)([]byte("d1:y1:qe"))
	waitFor(t, "the orphan counted", 5*time.Second, func() bool { return u.Stats().NoListener == 1 })
	if u.DHT() == nil {
		t.Fatal("a closed route is not given back")
	}
}

// miniTracker answers BEP 15 connect and announce with one peer.
func miniTracker(t *testing.T, peer netip.AddrPort) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 16 {
				continue
			}
			action, txid := binary.BigEndian.Uint32(buf[8:12]), binary.BigEndian.Uint32(buf[12:16])
			var reply []byte
			switch action {
			case 0:
				reply = trackerReply(0, txid, 0, 0, 0, 0, 0, 0, 0, 5)
			case 1:
				reply = trackerReply(1, txid, 0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 1)
				reply = metainfo.AppendCompactPeer(reply, peer)
			}
			pc.WriteToUDPAddrPort(reply, from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// The peer port's UDP socket carries a UDP tracker announce and a DHT
// node's traffic at once, on the peer port's number.
func TestUDPTrackerAndDHTShareSocket(t *testing.T) {
	srv, err := Listen(Config{ListenAddr: "127.0.0.1:0", UDPRequired: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Stop(); srv.UDP().Close() }()
	u := srv.UDP()
	if u.Port() != srv.Port() {
		t.Fatalf("UDP on %d, peers on %d", u.Port(), srv.Port())
	}

	ours, err := dht.New(dht.Config{Conn: u.DHT(), AllowSameIP: true, QueryRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.Start(); err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	other, err := dht.New(dht.Config{Listen: "127.0.0.1:0", AllowSameIP: true, QueryRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	peer := netip.MustParseAddrPort("10.1.2.3:6881")
	trk := tracker.NewClient(tracker.Config{Socket: u, UDP: tracker.UDPConfig{BaseTimeout: time.Second, MaxRetries: 2, MaxTotal: 10 * time.Second}})
	defer trk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	announced := make(chan error, 1)
	go func() {
		req := tracker.NewRequest(metainfo.Hash{1}, [20]byte{2}, srv.Port())
		r, err := trk.Announce(ctx, "udp://"+miniTracker(t, peer).String(), req)
		if err == nil && (len(r.Peers) != 1 || r.Peers[0] != peer) {
			err = errors.New("wrong peers")
		}
		announced <- err
	}()
	// Both directions: our node queries, and is queried on the peer port.
	if _, err := ours.Ping(ctx, other.LocalAddr()); err != nil {
		t.Fatalf("our node's ping: %v", err)
	}
	id, err := other.Ping(ctx, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), srv.Port()))
	if err != nil || id != ours.ID() {
		t.Fatalf("ping to the peer port: id %v, %v", id, err)
	}
	if err := <-announced; err != nil {
		t.Fatalf("announce over the shared socket: %v", err)
	}
	if s := u.Stats(); s.Tracker < 2 || s.DHT < 2 {
		t.Fatalf("stats %+v: want the tracker's 2 replies and the DHT's traffic", s)
	}
}
