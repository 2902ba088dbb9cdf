package netio

import (
	"encoding/binary"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/peertest"
)

// utpPackets is how many uTP packets n's Mux has taken in, or sent, so
// far.
func utpPackets(n *node, sent bool) int64 {
	if n.srv.mux == nil {
		return 0
	}
	st, _ := n.srv.mux.Stats()
	if sent {
		return st.PacketsOut
	}
	return st.PacketsIn
}

// overUTP fails t unless size bytes could have gone in the packets
// counted.
func overUTP(t *testing.T, packets, size int64) {
	t.Helper()
	if packets < size/1452/2 {
		t.Fatalf("%d uTP data packets: %d bytes did not go over uTP", packets, size)
	}
}

// Ours to ours over uTP: a leecher told (as PEX would) that the seeder
// speaks uTP dials it over uTP and downloads the torrent whole.
func TestUTPBetweenNodes(t *testing.T) {
	data := testData(t, "utp-src", interopSizes)
	_, mi := makeTorrent(t, data, 256<<10)
	seed := startNode(t, engine.Config{})
	ss, err := seed.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ss, engine.StateSeeding, 60*time.Second)
	leech := startNode(t, engine.Config{})
	ls, err := leech.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: leech.dir}})
	if err != nil {
		t.Fatal(err)
	}
	leech.srv.PreferUTP(seed.addr())
	ls.AddPeers(addrs(seed.addr()), "test")
	waitState(t, ls, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), leech.dir)
	overUTP(t, utpPackets(seed, true), mi.TotalLength)
	overUTP(t, utpPackets(leech, false), mi.TotalLength)
}

// A libtorrent that takes only uTP seeds to us: we dial TCP, it hangs up
// before a byte, we dial again over uTP and download the torrent whole.
func TestUTPDownloadFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-utp-src", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep", "--utp-only", "--plaintext")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers([]netip.AddrPort{ltAddr(seed)}, "test")
	waitState(t, s, engine.StateSeeding, 120*time.Second)
	sameTree(t, mi, filepath.Dir(data), n.dir)
	overUTP(t, utpPackets(n, false), mi.TotalLength)
}

// A libtorrent that speaks only uTP downloads from us: it dials our peer
// port's number over UDP.
func TestUTPSeedToLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := testData(t, "lt-utp-seed", interopSizes)
	tpath, mi := makeTorrent(t, data, 256<<10)
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 60*time.Second)
	out := t.TempDir()
	leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", out, "--peer", n.addr().String(), "--utp-only", "--plaintext")
	if _, err := leech.WaitLine("DONE", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mi, filepath.Dir(data), out)
	overUTP(t, utpPackets(n, true), mi.TotalLength)
}

// A flood of uTP SYNs from one address holds no more than the pending
// set's bound for that address (the same as for TCP handshakes); the
// evicted ones leave no connection behind, and an honest uTP peer still
// gets through.
func TestUTPSynFloodBounded(t *testing.T) {
	n := startNode(t, engine.Config{Logf: func(string, ...any) {}})
	data := testData(t, "flood", []int{300 << 10})
	_, mi := makeTorrent(t, data, 64<<10)
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 30*time.Second)
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const syns = 500
	for i := range syns {
		b := make([]byte, 20)
		b[0] = 4<<4 | 1
		binary.BigEndian.PutUint16(b[2:], uint16(2*i))
		binary.BigEndian.PutUint16(b[16:], 1)
		if _, err := pc.WriteToUDPAddrPort(b, n.addr()); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // within the socket's buffer
		}
	}
	waitFor(t, "every SYN handled", 10*time.Second, func() bool {
		st, _ := n.srv.mux.Stats()
		return st.PacketsIn >= syns
	})
	if p := n.srv.pending.len(); p > n.srv.cfg.MaxPendingPerIP {
		t.Fatalf("%d connections pending after a SYN flood from one address", p)
	}
	waitFor(t, "evicted SYNs forgotten", 5*time.Second, func() bool {
		st, _ := n.srv.mux.Stats()
		return st.Conns <= n.srv.cfg.MaxPendingPerIP
	})
	// An honest peer from another address still connects and downloads.
	leech := startNode(t, engine.Config{})
	ls, err := leech.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: leech.dir}})
	if err != nil {
		t.Fatal(err)
	}
	leech.srv.PreferUTP(n.addr())
	ls.AddPeers(addrs(n.addr()), "test")
	waitState(t, ls, engine.StateSeeding, 30*time.Second)
	overUTP(t, utpPackets(leech, false), mi.TotalLength)
}

// A peer flagged as speaking uTP that does not: the uTP dial gets no
// answer, and after UTPFallback the same dial goes over TCP.
func TestUTPHintFallsBackToTCP(t *testing.T) {
	data := testData(t, "fallback", []int{2 << 20})
	_, mi := makeTorrent(t, data, 256<<10)
	seed := startNodeWith(t, engine.Config{}, Config{NoUTP: true})
	ss, err := seed.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ss, engine.StateSeeding, 30*time.Second)
	leech := startNodeWith(t, engine.Config{}, Config{UTPFallback: time.Second})
	ls, err := leech.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: leech.dir}})
	if err != nil {
		t.Fatal(err)
	}
	leech.srv.PreferUTP(seed.addr())
	start := time.Now()
	ls.AddPeers(addrs(seed.addr()), "test")
	waitState(t, ls, engine.StateSeeding, 30*time.Second)
	sameTree(t, mi, filepath.Dir(data), leech.dir)
	if took := time.Since(start); took < time.Second {
		t.Fatalf("done in %v: the uTP dial did not wait for its answer", took)
	}
	if p := utpPackets(leech, false); p != 0 {
		t.Fatalf("%d uTP packets from a peer without uTP", p)
	}
}
