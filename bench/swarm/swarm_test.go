package swarm

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// testTorrent is a payload whose last piece and last block are short.
func testTorrent(t testing.TB, seed uint64, size int64) (Torrent, *metainfo.MetaInfo) {
	t.Helper()
	p := Payload{Seed: seed, Size: size}
	_, mi, err := MakeTorrent(p, "swarm.bin", 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	return Torrent{Meta: mi, Payload: p}, mi
}

func startSwarm(t testing.TB, cfg Config) *Swarm {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLeechersVerifyWhatSeedersServe(t *testing.T) {
	tor, mi := testTorrent(t, 1, 2<<20+9_999)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", Duration: 30 * time.Second})
	// Each connection is capped, so the transfer lasts about a second
	// and every connection is up before it ends: uncapped, five of them
	// once took all of it in 0.2 s, before the sixth had its handshake.
	want := 6 * mi.TotalLength
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: 6,
		Verify: true, MaxBytes: want, Pipeline: 16, RateCap: 2 << 20, Duration: 30 * time.Second})
	select {
	case <-leechers.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("leechers did not reach MaxBytes")
	}
	ls := leechers.Stop()
	ss := seeders.Stop()
	if ls.Down < want {
		t.Fatalf("leechers stopped with %d bytes, want %d", ls.Down, want)
	}
	if ls.PiecesBad != 0 || ls.PiecesOK < int64(mi.NumPieces()) {
		t.Errorf("pieces: %d verified, %d bad; want at least %d verified and none bad", ls.PiecesOK, ls.PiecesBad, mi.NumPieces())
	}
	if ss.Up < ls.Down {
		t.Errorf("seeders sent %d bytes, leechers counted %d", ss.Up, ls.Down)
	}
	if ls.ProtocolErrors != 0 || ss.ProtocolErrors != 0 || ls.Unexpected != 0 {
		t.Errorf("protocol errors %d/%d, unexpected blocks %d", ls.ProtocolErrors, ss.ProtocolErrors, ls.Unexpected)
	}
	var sum int64
	active := 0
	for _, b := range ls.PerConn {
		sum += b
		if b > 0 {
			active++
		}
	}
	if sum != ls.Down || active != 6 {
		t.Errorf("per-connection bytes add up to %d of %d, %d of 6 connections moved data", sum, ls.Down, active)
	}
	w := Rates(Stats{At: ls.At.Add(-ls.Elapsed), PerConn: make([]int64, 6)}, ls)
	if w.MBps <= 0 || w.ConnMin <= 0 || w.ConnMax < w.ConnP50 || w.Active != 6 {
		t.Errorf("rates %+v", w)
	}
}

func TestCorruptSeedersFailVerification(t *testing.T) {
	tor, _ := testTorrent(t, 2, 1<<20)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", Corrupt: 0.5, Duration: 30 * time.Second})
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: 4,
		Verify: true, MaxBytes: 8 << 20, Duration: 30 * time.Second})
	ls := leechers.Wait()
	if ls.PiecesBad == 0 || ls.PiecesOK == 0 {
		t.Errorf("with half the seeders corrupt: %d pieces verified, %d bad; want both", ls.PiecesOK, ls.PiecesBad)
	}
}

// A plain listener records where connections come from: the swarm spreads
// them over source addresses and keeps them open until it stops.
func TestIdleConnectionsFromManySourceAddresses(t *testing.T) {
	tor, _ := testTorrent(t, 3, 64<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	srcs := map[netip.Addr]int{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			srcs[netip.MustParseAddrPort(c.RemoteAddr().String()).Addr()]++
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	s := startSwarm(t, Config{Mode: Idle, Torrents: []Torrent{tor}, Target: netip.MustParseAddrPort(ln.Addr().String()),
		Peers: 40, SourceIPs: 10, Duration: 20 * time.Second})
	waitUntil(t, "40 connections are open", 10*time.Second, func() bool { return s.Stats().Open == 40 })
	mu.Lock()
	n := len(srcs)
	for a, k := range srcs {
		if a.As4()[0] != 127 || a.As4()[3] < 2 || a.As4()[3] > 11 || k != 4 {
			t.Errorf("%d connections from %s", k, a)
		}
	}
	mu.Unlock()
	if n != 10 {
		t.Errorf("connections came from %d addresses, want 10", n)
	}
	if st := s.Stop(); st.Handshaken != 0 || st.Dials != 40 {
		t.Errorf("handshaken %d (the listener never answered), dials %d", st.Handshaken, st.Dials)
	}
}

func TestChurnReopensConnections(t *testing.T) {
	tor, _ := testTorrent(t, 4, 64<<10)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", Duration: 30 * time.Second})
	s := startSwarm(t, Config{Mode: Idle, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: 20, Churn: 40,
		Duration: 30 * time.Second})
	waitUntil(t, "20 connections handshaken", 10*time.Second, func() bool { return s.Stats().Handshaken == 20 })
	time.Sleep(time.Second)
	st := s.Stats()
	if st.Churned < 20 || st.Dials < st.Churned {
		t.Errorf("after 1 s at 40/s: churned %d, dials %d", st.Churned, st.Dials)
	}
	if st.RemoteCloses != 0 || st.DialErrors != 0 {
		t.Errorf("remote closes %d, dial errors %d", st.RemoteCloses, st.DialErrors)
	}
	if st.Open < 10 {
		t.Errorf("only %d of 20 connections open under churn", st.Open)
	}
}

func TestConfigErrors(t *testing.T) {
	tor, _ := testTorrent(t, 5, 64<<10)
	target := netip.MustParseAddrPort("127.0.0.1:1")
	bad := tor
	bad.Payload.Size++
	for name, cfg := range map[string]Config{
		"no mode":      {Torrents: []Torrent{tor}, Target: target},
		"no torrent":   {Mode: Leech, Target: target},
		"no target":    {Mode: Leech, Torrents: []Torrent{tor}},
		"payload size": {Mode: Seed, Torrents: []Torrent{bad}, Target: target},
		"huge block":   {Mode: Leech, Torrents: []Torrent{tor}, Target: target, BlockLen: 1 << 20},
		"corrupt > 1":  {Mode: Seed, Torrents: []Torrent{tor}, Target: target, Corrupt: 2},
	} {
		if s, err := Start(cfg); err == nil {
			s.Stop()
			t.Errorf("%s: started", name)
		}
	}
}

// A peer that writes its handshake and every frame in small pieces, with
// pauses, makes each frame span several reads: the leecher must stitch
// them, never drop a partial frame.
func TestFramesSplitAcrossReads(t *testing.T) {
	tor, mi := testTorrent(t, 6, 512<<10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		trickle := func(b []byte) error {
			for len(b) > 0 {
				n := min(len(b), 1+len(b)/3)
				if _, err := c.Write(b[:n]); err != nil {
					return err
				}
				b = b[n:]
				time.Sleep(2 * time.Millisecond)
			}
			return nil
		}
		hs := make([]byte, wire.HandshakeLen)
		if _, err := io.ReadFull(c, hs); err != nil {
			return
		}
		out := wire.AppendHandshake(nil, wire.Handshake{InfoHash: mi.InfoHash})
		out = wire.AppendSimple(out, wire.Unchoke)
		if trickle(out) != nil {
			return
		}
		for {
			hdr := make([]byte, 4)
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			if len(body) != 13 || wire.Type(body[0]) != wire.Request {
				continue
			}
			index, begin, length := binary.BigEndian.Uint32(body[1:]), binary.BigEndian.Uint32(body[5:]), binary.BigEndian.Uint32(body[9:])
			block := make([]byte, length)
			tor.Payload.ReadAt(block, int64(index)*mi.PieceLength+int64(begin))
			if trickle(wire.AppendPiece(nil, index, begin, block)) != nil {
				return
			}
		}
	}()
	s := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: netip.MustParseAddrPort(ln.Addr().String()),
		Verify: true, Pipeline: 2, MaxBytes: 2 * mi.PieceLength, RedialDelay: -1, Duration: 20 * time.Second})
	st := s.Wait()
	if st.ProtocolErrors != 0 || st.PiecesBad != 0 || st.PiecesOK < 2 {
		t.Fatalf("verified %d pieces, %d bad, %d protocol errors (%s)", st.PiecesOK, st.PiecesBad, st.ProtocolErrors, st.LastError)
	}
}
