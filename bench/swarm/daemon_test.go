package swarm

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio"
)

// daemon is our engine and network layer in-process on 127.0.0.1, as the
// netio tests start it.
type daemon struct {
	client *engine.Client
	srv    *netio.Server
}

func startDaemon(t testing.TB, cfg engine.Config) *daemon {
	t.Helper()
	return startDaemonWith(t, cfg, netio.Config{})
}

// startDaemonWith is startDaemon with network settings; it listens on
// 127.0.0.1 whatever ncfg says.
func startDaemonWith(t testing.TB, cfg engine.Config, ncfg netio.Config) *daemon {
	t.Helper()
	cfg.PeerID = wire.NewPeerID(rand.Reader)
	cfg.Logf = func(string, ...any) {}
	ncfg.ListenAddr = "127.0.0.1:0"
	ncfg.Logf = func(string, ...any) {}
	srv, err := netio.Listen(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenPort, cfg.Dialer, cfg.Listener = srv.Port(), srv, srv
	c := engine.New(cfg)
	if err := srv.Serve(c); err != nil {
		srv.Stop()
		c.Close()
		srv.UDP().Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop()
		c.Close()
		srv.UDP().Close()
	})
	return &daemon{client: c, srv: srv}
}

func (d *daemon) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), d.srv.Port())
}

func (d *daemon) add(t testing.TB, mi *metainfo.MetaInfo, dir string, want engine.State) *engine.Session {
	t.Helper()
	s, err := d.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the torrent is "+want.String(), 20*time.Second, func() bool {
		sn := s.Snapshot()
		if sn.State == engine.StateError {
			t.Fatalf("session error: %s", sn.Error)
		}
		return sn.State == want
	})
	return s
}

func TestSwarmLeechesFromOurDaemon(t *testing.T) {
	tor, mi := testTorrent(t, 11, 4<<20+4_321)
	dir := t.TempDir()
	if err := WritePayload(tor.Payload, filepath.Join(dir, mi.Name)); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, engine.Config{})
	d.add(t, mi, dir, engine.StateSeeding)
	want := 2 * mi.TotalLength
	s := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: d.addr(),
		Peers: 12, Verify: true, MaxBytes: want, Duration: 30 * time.Second})
	waitUntil(t, "12 connections are handshaken", 10*time.Second, func() bool { return s.Stats().Handshaken == 12 })
	st := s.Wait()
	if st.Down < want {
		t.Fatalf("swarm got %d bytes in %v, want %d", st.Down, st.Elapsed, want)
	}
	if st.PiecesBad != 0 || st.PiecesOK < int64(mi.NumPieces()) || st.ProtocolErrors != 0 {
		t.Errorf("pieces verified %d, bad %d, protocol errors %d", st.PiecesOK, st.PiecesBad, st.ProtocolErrors)
	}
	t.Logf("12 leechers: %d bytes in %v, %+v", st.Down, st.Elapsed.Round(time.Millisecond),
		Rates(Stats{At: st.At.Add(-st.Elapsed), PerConn: make([]int64, 12)}, st))
}

// Leechers reach our daemon over MSE (it requires RC4, so a plaintext
// byte would be refused) and over uTP (the swarm's UDP sockets carry the
// blocks), and verify every piece.
func TestSwarmLeechesOverMSEAndUTP(t *testing.T) {
	for _, tc := range []struct {
		tr  Transport
		enc netio.Encryption
	}{{MSE, netio.EncryptionRequire}, {UTP, netio.EncryptionPrefer}} {
		t.Run(tc.tr.String(), func(t *testing.T) {
			tor, mi := testTorrent(t, 13, 4<<20+1_234)
			dir := t.TempDir()
			if err := WritePayload(tor.Payload, filepath.Join(dir, mi.Name)); err != nil {
				t.Fatal(err)
			}
			d := startDaemonWith(t, engine.Config{}, netio.Config{Encryption: tc.enc})
			d.add(t, mi, dir, engine.StateSeeding)
			want := 4 * mi.TotalLength
			s := startSwarm(t, Config{Mode: Leech, Transport: tc.tr, Torrents: []Torrent{tor}, Target: d.addr(),
				Peers: 6, Verify: true, MaxBytes: want, Duration: 30 * time.Second, KeepAlive: 100 * time.Millisecond})
			waitUntil(t, "6 connections are handshaken", 10*time.Second, func() bool { return s.Stats().Handshaken == 6 })
			st := s.Wait()
			// The muxes publish their counters at their ticks: read them
			// once the transfer is over, not right after the handshakes
			// (a loaded machine had not ticked yet).
			var in int64
			if tc.tr == UTP {
				for _, m := range s.utp.muxes {
					mst, _ := m.Stats()
					in += mst.PacketsIn
				}
			}
			if st.Down < want {
				t.Fatalf("swarm got %d bytes in %v, want %d", st.Down, st.Elapsed, want)
			}
			// Keep-alives go out every 100 ms: one sent in plaintext, or out
			// of the RC4 stream's order, would get the connection closed.
			if st.PiecesBad != 0 || st.PiecesOK < int64(mi.NumPieces()) || st.ProtocolErrors != 0 ||
				st.DialErrors != 0 || st.RemoteCloses != 0 {
				t.Errorf("pieces verified %d, bad %d, protocol errors %d (%s), dial errors %d, remote closes %d",
					st.PiecesOK, st.PiecesBad, st.ProtocolErrors, st.LastError, st.DialErrors, st.RemoteCloses)
			}
			if tc.tr == UTP && in == 0 {
				t.Error("no uTP packet arrived")
			}
		})
	}
}

func TestOurDaemonLeechesFromSwarmDespiteACorruptSeeder(t *testing.T) {
	tor, mi := testTorrent(t, 12, 4<<20+777)
	d := startDaemon(t, engine.Config{})
	dir := t.TempDir()
	sess, err := d.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	// One seeder of five corrupts every block it sends.
	s := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Target: d.addr(),
		Peers: 5, Corrupt: 0.2, Duration: 30 * time.Second})
	waitUntil(t, "the daemon completes", 30*time.Second, func() bool {
		sn := sess.Snapshot()
		if sn.State == engine.StateError {
			t.Fatalf("session error: %s", sn.Error)
		}
		return sn.State == engine.StateSeeding
	})
	st := s.Stop()
	got, err := os.ReadFile(filepath.Join(dir, mi.Name))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, tor.Payload.Size)
	tor.Payload.ReadAt(want, 0)
	if !bytes.Equal(got, want) {
		t.Fatal("the downloaded file differs from the payload")
	}
	if st.Up < mi.TotalLength {
		t.Errorf("seeders sent %d bytes for a torrent of %d", st.Up, mi.TotalLength)
	}
	t.Logf("seeders sent %d bytes; remote closes %d; daemon wasted %d", st.Up, st.RemoteCloses, sess.Snapshot().Wasted)
}
