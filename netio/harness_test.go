package netio

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// node is our daemon's engine and network layer, on 127.0.0.1.
type node struct {
	client *engine.Client
	srv    *Server
	dir    string
}

func startNode(t testing.TB, cfg engine.Config) *node {
	t.Helper()
	return startNodeWith(t, cfg, Config{})
}

// startNodeWith is startNode with network settings; its listen address and
// dial timeout default to the tests' own.
func startNodeWith(t testing.TB, cfg engine.Config, ncfg Config) *node {
	t.Helper()
	cfg.PeerID = wire.NewPeerID(rand.Reader)
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	if ncfg.ListenAddr == "" {
		ncfg.ListenAddr = "127.0.0.1:0"
	}
	if ncfg.DialTimeout == 0 {
		ncfg.DialTimeout = 3 * time.Second
	}
	if ncfg.Logf == nil {
		ncfg.Logf = t.Logf
	}
	// The order cmd's buildStack follows: bind, build the engine on what
	// was bound, serve it.
	srv, err := Listen(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenPort, cfg.Dialer, cfg.Listener = srv.Port(), srv, srv
	if u := srv.UDP(); u != nil {
		cfg.Tracker.Socket = u
	}
	c := engine.New(cfg)
	if err := srv.Serve(c); err != nil {
		srv.Stop()
		c.Close()
		srv.UDP().Close()
		t.Fatal(err)
	}
	n := &node{client: c, srv: srv, dir: t.TempDir()}
	t.Cleanup(func() {
		srv.Stop()
		c.Close()
		srv.UDP().Close()
	})
	return n
}

func (n *node) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.srv.Port())
}

// waitState waits until the session reaches want, failing on error.
func waitState(t testing.TB, s *engine.Session, want engine.State, timeout time.Duration) *engine.Snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sn := s.Snapshot()
		if sn.State == want {
			return sn
		}
		if sn.State == engine.StateError {
			t.Fatalf("session error: %s", sn.Error)
		}
		if time.Now().After(deadline) {
			for _, p := range sn.Peers {
				t.Logf("peer %s connected=%v down=%d up=%d rel=%.2f client=%q", p.Addr, p.Connected, p.Downloaded, p.Uploaded, p.Relevance, p.Client)
			}
			t.Fatalf("state %s after %v, want %s (have %d/%d pieces, peers %d)", sn.State, timeout, want,
				sn.Have, sn.NumPieces, len(sn.Peers))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testData writes a multi-file tree whose sizes do not divide the piece
// length and returns its folder (named name, inside a new temp dir).
func testData(t testing.TB, name string, sizes []int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	r := mrand.New(mrand.NewPCG(uint64(len(sizes)), 99))
	for i, n := range sizes {
		p := filepath.Join(root, fmt.Sprintf("dir%d", i%2), fmt.Sprintf("file%d.bin", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, n)
		for j := 0; j < n; j += 8 {
			v := r.Uint64()
			for k := 0; k < 8 && j+k < n; k++ {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func makeTorrent(t testing.TB, data string, pieceLen int64, trackers ...string) (string, *metainfo.MetaInfo) {
	t.Helper()
	var tiers [][]string
	for _, tr := range trackers {
		tiers = append(tiers, []string{tr})
	}
	b, err := metainfo.Create(data, metainfo.CreateOptions{PieceLength: pieceLen, Trackers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(data)+".torrent")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return path, mi
}

// sameTree compares every file of mi between two download folders.
func sameTree(t testing.TB, mi *metainfo.MetaInfo, wantRoot, gotRoot string) {
	t.Helper()
	for _, f := range mi.Files {
		if f.Pad {
			continue
		}
		rel := filepath.Join(f.Path...)
		if !mi.SingleFile {
			rel = filepath.Join(mi.Name, rel)
		}
		want, err := os.ReadFile(filepath.Join(wantRoot, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(gotRoot, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("%s: bytes differ (%d vs %d bytes)", rel, len(want), len(got))
		}
	}
}

// waitFor polls cond until it holds; snapshots lag events by up to a tick.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func addrs(a ...netip.AddrPort) []netip.AddrPort { return a }
