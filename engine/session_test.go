package engine

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// fakeConn stands in for a network connection: it records every frame the
// session sends, so tests assert on actions without sockets.
type fakeConn struct {
	addr   netip.AddrPort
	mu     sync.Mutex
	out    []byte
	closed bool
	// what Buffered and Unsent report, for tests of backpressure
	buffered, unsent atomic.Int64
}

func (f *fakeConn) Send(bufs ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bufs {
		f.out = append(f.out, b...)
	}
}
func (f *fakeConn) SendBlock(hdr, block []byte, release func()) {
	f.Send(hdr, append([]byte(nil), block...))
	release()
}
func (f *fakeConn) Close()                     { f.mu.Lock(); f.closed = true; f.mu.Unlock() }
func (f *fakeConn) RemoteAddr() netip.AddrPort { return f.addr }
func (f *fakeConn) Buffered() int              { return int(f.buffered.Load()) }
func (f *fakeConn) Unsent() int                { return int(f.unsent.Load()) }
func (f *fakeConn) NotifyWritable(int)         {}

func (f *fakeConn) isClosed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }

// sent decodes every frame sent so far.
func (f *fakeConn) sent(t *testing.T) []wire.Message {
	t.Helper()
	f.mu.Lock()
	b := append([]byte(nil), f.out...)
	f.mu.Unlock()
	var msgs []wire.Message
	for len(b) >= 4 {
		n, _ := wire.FrameLen(b)
		if len(b) < n {
			break
		}
		var m wire.Message
		if err := wire.Decode(b[:n], &m); err != nil {
			t.Fatalf("session sent an undecodable frame: %v", err)
		}
		msgs = append(msgs, m)
		b = b[n:]
	}
	return msgs
}

func (f *fakeConn) sentTypes(t *testing.T) map[wire.Type]int {
	out := map[wire.Type]int{}
	for _, m := range f.sent(t) {
		out[m.Type]++
	}
	return out
}

// fixture is a client with no network and no ticker, one torrent, and its
// data: the session is driven entirely by the test.
type fixture struct {
	t    *testing.T
	c    *Client
	s    *Session
	mi   *metainfo.MetaInfo
	data []byte
	dir  string
	now  atomic.Int64 // unix ns; read by the session's runners
}

var ourID = [20]byte{'-', 'G', 'T', '0', '0', '0', '1', '-', 'o', 'u', 'r', 's', 'e', 'l', 'f', '0', '0', '0', '0', '1'}

func newFixture(t *testing.T, seeding bool) *fixture {
	t.Helper()
	data := make([]byte, 5*32768+1000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	mi := &metainfo.MetaInfo{Name: "fx.bin", PieceLength: 32768, TotalLength: int64(len(data)), SingleFile: true,
		Files: []metainfo.File{{Path: []string{"fx.bin"}, Length: int64(len(data))}}}
	for off := 0; off < len(data); off += 32768 {
		mi.Pieces = append(mi.Pieces, sha1.Sum(data[off:min(off+32768, len(data))]))
	}
	mi.InfoHash = sha1.Sum([]byte("fixture"))
	dir := t.TempDir()
	have := bitset.New(uint(mi.NumPieces()))
	if seeding {
		os.WriteFile(filepath.Join(dir, "fx.bin"), data, 0o644)
		have.SetAll()
	}
	f := &fixture{t: t, mi: mi, data: data, dir: dir}
	f.now.Store(time.Unix(1_700_000_000, 0).UnixNano())
	f.c = New(Config{PeerID: ourID, Tick: -1, Now: func() time.Time { return time.Unix(0, f.now.Load()) }, Logf: t.Logf})
	t.Cleanup(f.c.Close)
	s, err := f.c.Add(mi, AddOptions{Settings: Settings{Dir: dir}, Have: have})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	// Adding checks what is on disk first, on the disk pool; a test that
	// raced it would talk to a session not yet downloading or seeding.
	f.waitFor("the check at add to finish", func() bool {
		var st State
		f.s.post(evFunc(func(s *Session) { st = s.life.state }))
		f.sync()
		return st != StateChecking
	})
	return f
}

// sync waits until the session has handled everything posted so far,
// including the afterBatch work (requests, uploads) those events caused: an
// event posted from inside a batch runs in the next one, after afterBatch.
func (f *fixture) sync() {
	done := make(chan struct{})
	f.s.post(evFunc(func(s *Session) { s.post(evFunc(func(*Session) { close(done) })) }))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		f.t.Fatal("session did not drain its inbox")
	}
}

func (f *fixture) tick(d time.Duration) {
	now := time.Unix(0, f.now.Add(int64(d)))
	f.s.post(tickEvent{now})
	f.sync()
}

var nextPort uint16 = 40000

// attach connects a fake peer that supports the Fast and extension protocols.
func (f *fixture) attach(id byte) (*fakeConn, *Peer) {
	nextPort++
	fc := &fakeConn{addr: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), nextPort)}
	hs := wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: f.mi.InfoHash}
	hs.PeerID[0] = id
	h := f.s.Attach(fc, hs, false)
	f.sync()
	return fc, h
}

func (f *fixture) deliver(h *Peer, msgs ...wire.Message) {
	h.Deliver(msgs)
	f.sync()
}

func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
		f.sync()
	}
}

func TestGreetingAndUpload(t *testing.T) {
	f := newFixture(t, true)
	fc, h := f.attach(1)
	types := fc.sentTypes(t)
	if types[wire.Extended] != 1 || types[wire.HaveAll] != 1 {
		t.Fatalf("greeting sent %v, want one extended handshake and have-all", types)
	}
	// A request while choked is rejected (Fast extension), not served.
	f.deliver(h, wire.Message{Type: wire.Request, Index: 1, Begin: 0, Length: 16384})
	if fc.sentTypes(t)[wire.Reject] != 1 {
		t.Fatal("request while choked was not rejected")
	}
	// Interest gets a free slot at once, and then the block is served.
	f.deliver(h, wire.Message{Type: wire.Interested})
	if fc.sentTypes(t)[wire.Unchoke] != 1 {
		t.Fatal("interested peer with a free slot was not unchoked")
	}
	f.deliver(h, wire.Message{Type: wire.Request, Index: 4, Begin: 16384, Length: 16384})
	f.waitFor("the piece to be sent", func() bool { return fc.sentTypes(t)[wire.Piece] == 1 })
	for _, m := range fc.sent(t) {
		if m.Type == wire.Piece {
			want := f.data[4*32768+16384 : 4*32768+32768]
			if m.Index != 4 || m.Begin != 16384 || !bytes.Equal(m.Block, want) {
				t.Fatal("served block differs from the file")
			}
		}
	}
	f.waitFor("upload counted", func() bool { f.tick(time.Second); return f.s.Snapshot().Uploaded == 16384 })
	// A request past the end of the torrent closes the connection.
	f.deliver(h, wire.Message{Type: wire.Request, Index: 99, Begin: 0, Length: 16384})
	if !fc.isClosed() {
		t.Fatal("out-of-range request did not close the connection")
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, true)
	self := &fakeConn{addr: netip.MustParseAddrPort("10.0.0.2:1")}
	f.s.Attach(self, wire.Handshake{InfoHash: f.mi.InfoHash, PeerID: ourID}, true)
	f.sync()
	if !self.isClosed() {
		t.Fatal("connection to ourselves kept")
	}
	a, _ := f.attach(7)
	dup := &fakeConn{addr: netip.MustParseAddrPort("10.0.0.3:1")}
	hs := wire.Handshake{InfoHash: f.mi.InfoHash}
	hs.PeerID[0] = 7
	f.s.Attach(dup, hs, false)
	f.sync()
	if !dup.isClosed() || a.isClosed() {
		t.Fatal("duplicate peer id: want the second refused and the first kept")
	}
}

// leech connects a seeding fake peer to a downloading fixture and answers
// every request with blocks from data (corrupted where bad says so).
func (f *fixture) serveRequests(fc *fakeConn, h *Peer, answered map[[2]uint32]bool, bad func(piece uint32) bool) int {
	n := 0
	for _, m := range fc.sent(f.t) {
		key := [2]uint32{m.Index, m.Begin}
		if m.Type != wire.Request || answered[key] {
			continue
		}
		answered[key] = true
		off := int(m.Index)*32768 + int(m.Begin)
		block := append([]byte(nil), f.data[off:off+int(m.Length)]...)
		if bad != nil && bad(m.Index) {
			block[0] ^= 1
		}
		h.Deliver([]wire.Message{{Type: wire.Piece, Index: m.Index, Begin: m.Begin, Block: block}})
		n++
	}
	f.sync()
	return n
}

func TestDownloadVerifiesAndAnnouncesHave(t *testing.T) {
	f := newFixture(t, false)
	seedConn, seed := f.attach(1)
	other, _ := f.attach(2)
	f.deliver(seed, wire.Message{Type: wire.HaveAll})
	if seedConn.sentTypes(t)[wire.Interested] != 1 {
		t.Fatal("not interested in a seed")
	}
	f.deliver(seed, wire.Message{Type: wire.Unchoke})
	answered := map[[2]uint32]bool{}
	f.waitFor("download to complete", func() bool {
		f.serveRequests(seedConn, seed, answered, nil)
		return f.s.Snapshot().State == StateSeeding
	})
	got, err := os.ReadFile(filepath.Join(f.dir, "fx.bin"))
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("bytes on disk differ: %v", err)
	}
	if n := other.sentTypes(t)[wire.Have]; n != f.mi.NumPieces() {
		t.Fatalf("other peer got %d haves, want %d", n, f.mi.NumPieces())
	}
	if seedConn.sentTypes(t)[wire.NotInterested] != 1 {
		t.Fatal("still interested after completing")
	}
}

func TestBadDataBansSoleContributor(t *testing.T) {
	f := newFixture(t, false)
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	answered := map[[2]uint32]bool{}
	f.waitFor("the liar to be closed", func() bool {
		f.serveRequests(fc, h, answered, func(uint32) bool { return true })
		return fc.isClosed()
	})
	f.tick(time.Second)
	sn := f.s.Snapshot()
	if sn.Wasted < 32768 || sn.Have != 0 {
		t.Fatalf("wasted %d have %d, want a wasted piece and nothing verified", sn.Wasted, sn.Have)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "fx.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a piece that failed its hash reached the disk")
	}
	again := &fakeConn{addr: fc.addr}
	hs := wire.Handshake{InfoHash: f.mi.InfoHash}
	hs.PeerID[0] = 9
	f.s.Attach(again, hs, false)
	f.sync()
	if !again.isClosed() {
		t.Fatal("banned address reconnected")
	}
	// The client's stats count the failure and the ban; an expired ban
	// is not counted.
	st := f.c.Stats()
	if st.HashFailures < 1 || st.Bans != 1 || st.Wasted < 32768 {
		t.Fatalf("hash failures %d, bans %d, wasted %d: want the failed piece and its sender banned", st.HashFailures, st.Bans, st.Wasted)
	}
	f.now.Add(int64(25 * time.Hour))
	if n := f.c.Stats().Bans; n != 0 {
		t.Fatalf("%d bans a day later, want 0", n)
	}
}

func TestRequestTimeoutCancelsAndSnubs(t *testing.T) {
	f := newFixture(t, false)
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	if fc.sentTypes(t)[wire.Request] == 0 {
		t.Fatal("no requests to an unchoking seed")
	}
	f.tick(30 * time.Second)
	if fc.sentTypes(t)[wire.Cancel] != 0 {
		t.Fatal("cancelled before the timeout")
	}
	f.tick(31 * time.Second)
	if fc.sentTypes(t)[wire.Cancel] == 0 {
		t.Fatal("no cancel after the request timeout")
	}
	f.tick(4 * time.Minute)
	if !fc.isClosed() {
		t.Fatal("idle peer not dropped")
	}
}

// TestSimultaneousOpen: when a peer and we dial each other at once, the
// connection dialed by the smaller peer id survives, on both sides alike.
func TestSimultaneousOpen(t *testing.T) {
	for _, tc := range []struct {
		first    byte // first byte of the other peer's id; ours starts with '-'
		keepsOut bool // our outbound connection should survive
	}{{first: 1, keepsOut: false}, {first: 'z', keepsOut: true}} {
		f := newFixture(t, true)
		var id [20]byte
		id[0] = tc.first
		out := &fakeConn{addr: netip.MustParseAddrPort("10.0.0.9:6881")}
		in := &fakeConn{addr: netip.MustParseAddrPort("10.0.0.9:50000")}
		f.s.Attach(out, wire.Handshake{InfoHash: f.mi.InfoHash, PeerID: id}, true)
		f.sync()
		f.s.Attach(in, wire.Handshake{InfoHash: f.mi.InfoHash, PeerID: id}, false)
		f.sync()
		if out.isClosed() == tc.keepsOut || in.isClosed() != tc.keepsOut {
			t.Fatalf("peer id %q: outbound closed %v, inbound closed %v", id[:1], out.isClosed(), in.isClosed())
		}
	}
}

func TestWhenCompleteFires(t *testing.T) {
	f := newFixture(t, false)
	fired := make(chan struct{})
	f.s.WhenComplete(func() { close(fired) })
	seedConn, seed := f.attach(1)
	f.deliver(seed, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	answered := map[[2]uint32]bool{}
	f.waitFor("the completion callback", func() bool {
		f.serveRequests(seedConn, seed, answered, nil)
		select {
		case <-fired:
			return true
		default:
			return false
		}
	})
	if st := f.s.Snapshot().State; st != StateSeeding {
		t.Fatalf("snapshot says %v when completion fired", st)
	}
	again := make(chan struct{})
	f.s.WhenComplete(func() { close(again) })
	f.sync()
	select {
	case <-again:
	default:
		t.Fatal("WhenComplete on a complete torrent did not fire at once")
	}
}
