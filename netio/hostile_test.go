package netio

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// seedingNode starts a node seeding a small torrent and returns it with the
// metainfo.
func seedingNode(t *testing.T) (*node, *metainfo.MetaInfo, string) {
	t.Helper()
	data := testData(t, "hostile", []int{500001, 300007})
	_, mi := makeTorrent(t, data, 64<<10)
	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 20*time.Second)
	return n, mi, filepath.Dir(data)
}

// TestHostilePeersAreClosed sends each kind of protocol violation to a
// seeding node: every one closes the connection without harming the node,
// which still serves a well-behaved peer afterwards.
func TestHostilePeersAreClosed(t *testing.T) {
	n, mi, _ := seedingNode(t)
	addr := n.addr().String()
	np := mi.NumPieces()
	bfLen := (np + 7) / 8

	t.Run("unknown infohash", func(t *testing.T) {
		r := dialRaw(t, addr, metainfo.Hash{1, 2, 3})
		r.expectClosed("unknown infohash", 5*time.Second)
	})
	cases := map[string][]byte{
		"2^31 length prefix":    binary.BigEndian.AppendUint32(nil, 1<<31),
		"request beyond end":    wire.AppendRequest(nil, uint32(np), 0, 16384),
		"request past piece":    wire.AppendRequest(nil, 0, 64<<10-100, 16384),
		"request too long":      wire.AppendRequest(nil, 0, 0, 1<<20),
		"bitfield wrong len":    wire.AppendBitfield(nil, make([]byte, bfLen+1)),
		"bitfield spare bits":   wire.AppendBitfield(nil, append(make([]byte, bfLen-1), 0xff)),
		"have out of range":     wire.AppendHave(nil, uint32(np)),
		"have size wrong":       {0, 0, 0, 3, 4, 0, 0},
		"piece payload short":   {0, 0, 0, 5, 7, 0, 0, 0, 0},
		"extended before bep10": wire.AppendExtended(nil, 0, []byte("de")),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "extended before bep10" {
				// Our raw peer announces BEP 10; this one does not. Only
				// one is dialed: a second connection with the same peer
				// id would be closed as a duplicate instead, and the
				// first, left open, could make the honest peer below one.
				r := dialNoExt(t, addr, mi.InfoHash)
				r.send(msg)
				r.expectClosed(name, 5*time.Second)
				return
			}
			r := dialRaw(t, addr, mi.InfoHash)
			if err := r.readHandshake(); err != nil {
				t.Fatalf("no handshake answer: %v", err)
			}
			r.send(wire.AppendSimple(nil, wire.Interested))
			r.send(msg)
			r.expectClosed(name, 5*time.Second)
		})
	}

	// After all that, an honest peer still gets a verified block.
	r := dialRaw(t, addr, mi.InfoHash)
	if err := r.readHandshake(); err != nil {
		t.Fatal(err)
	}
	r.send(wire.AppendSimple(nil, wire.Interested))
	if _, err := r.readUntil(wire.Unchoke); err != nil {
		t.Fatalf("honest peer never unchoked: %v", err)
	}
	r.send(wire.AppendRequest(nil, 1, 16384, 16384))
	m, err := r.readUntil(wire.Piece)
	if err != nil || m.Index != 1 || m.Begin != 16384 || len(m.Block) != 16384 {
		t.Fatalf("honest request: %+v %v", m, err)
	}
}

func dialNoExt(t testing.TB, addr string, ih metainfo.Hash) *rawPeer {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, c)
	r.send(wire.AppendHandshake(nil, wire.Handshake{InfoHash: ih, PeerID: rawID}))
	if err := r.readHandshake(); err != nil {
		t.Fatal(err)
	}
	return r
}

// badSeeder is a seeder written in the test that serves every block from
// data, but flips a byte in every block of the pieces for which corrupt
// says so. It accepts connections until the test ends.
func badSeeder(t *testing.T, mi *metainfo.MetaInfo, data []byte, corrupt func(piece int) bool) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveBad(t, c, mi, data, corrupt)
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func serveBad(t *testing.T, c net.Conn, mi *metainfo.MetaInfo, data []byte, corrupt func(int) bool) {
	r := newRaw(t, c)
	if err := r.readHandshake(); err != nil {
		return
	}
	r.sendHandshake(mi.InfoHash)
	all := make([]byte, (mi.NumPieces()+7)/8)
	for i := range mi.NumPieces() {
		all[i/8] |= 0x80 >> (i % 8)
	}
	r.send(wire.AppendBitfield(nil, all))
	r.send(wire.AppendSimple(nil, wire.Unchoke))
	for {
		m, err := r.read()
		if err != nil {
			return
		}
		if m.Type != wire.Request {
			continue
		}
		off := int64(m.Index)*mi.PieceLength + int64(m.Begin)
		block := append([]byte(nil), data[off:off+int64(m.Length)]...)
		if corrupt(int(m.Index)) {
			block[0] ^= 0xff
		}
		r.send(wire.AppendPiece(nil, m.Index, m.Begin, block))
	}
}

// TestBadPieceDataBansPeer: a peer that sends corrupt pieces gets its
// pieces rejected (counted as wasted) and is banned, and the download still
// completes from an honest peer with identical bytes.
func TestBadPieceDataBansPeer(t *testing.T) {
	n0, mi, root := seedingNode(t) // the honest seeder
	data := make([]byte, 0, mi.TotalLength)
	for _, f := range mi.Files {
		b, err := os.ReadFile(filepath.Join(root, mi.Name, filepath.Join(f.Path...)))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	bad := badSeeder(t, mi, data, func(int) bool { return true })

	n := startNode(t, engine.Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers([]netip.AddrPort{bad}, "test")
	// Give the liar a head start so it is the sole contributor of pieces.
	deadline := time.Now().Add(10 * time.Second)
	for s.Snapshot().Wasted == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.AddPeers([]netip.AddrPort{n0.addr()}, "test")
	sn := waitState(t, s, engine.StateSeeding, 30*time.Second)
	// The failed piece may be the short last one: compare with the
	// smallest piece the liar could have sent whole.
	if smallest := min(mi.PieceLength, mi.PieceSize(mi.NumPieces()-1)); sn.Wasted < smallest {
		t.Fatalf("wasted %d, want at least one whole piece (%d bytes or more)", sn.Wasted, smallest)
	}
	for _, p := range sn.Peers {
		if p.Addr == bad && p.Connected {
			t.Fatalf("liar %s still connected", bad)
		}
	}
	sameTree(t, mi, root, n.dir)
	// The ban holds: a new connection from the liar's address is refused.
	s.AddPeers([]netip.AddrPort{bad}, "again")
	time.Sleep(300 * time.Millisecond)
	for _, p := range s.Snapshot().Peers {
		if p.Addr == bad && p.Connected {
			t.Fatal("banned peer reconnected")
		}
	}
}
