package engine

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// extHandshake is what a peer speaking ut_metadata (id 3) and ut_pex (id 4)
// sends after the BEP 3 handshake.
func extHandshake(t *testing.T) wire.Message {
	t.Helper()
	b, err := wire.EncodeExtHandshake(wire.ExtHandshake{M: map[string]int{"ut_metadata": 3, "ut_pex": 4}})
	if err != nil {
		t.Fatal(err)
	}
	return wire.Message{Type: wire.Extended, ExtID: 0, ExtPayload: b}
}

func (f *fixture) attachAt(addr netip.AddrPort, id byte) (*fakeConn, *Peer) {
	fc := &fakeConn{addr: addr}
	hs := wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: f.mi.InfoHash}
	hs.PeerID[0] = id
	h := f.s.Attach(fc, hs, false)
	f.sync()
	return fc, h
}

// A peer asking for the metadata over and over gets a few answers, then
// nothing, then loses its connection; three such connections from one
// address ban it.
func TestMetadataFloodCostsThePeer(t *testing.T) {
	f := newFixture(t, true)
	addr := netip.MustParseAddrPort("10.9.9.9:5000")
	for round := 1; round <= strikesToBan; round++ {
		fc, h := f.attachAt(addr, byte(round))
		if fc.isClosed() {
			t.Fatalf("round %d: refused before the ban", round)
		}
		f.deliver(h, extHandshake(t))
		req := ext.AppendMetadataMsg(nil, ext.MetadataMsg{Type: ext.MetadataRequest, Piece: 0})
		for range 1000 {
			if fc.isClosed() {
				break
			}
			f.deliver(h, wire.Message{Type: wire.Extended, ExtID: extMetadata, ExtPayload: req})
		}
		if !fc.isClosed() {
			t.Fatalf("round %d: 1,000 metadata requests and still connected", round)
		}
		answers := fc.sentTypes(t)[wire.Extended] - 1 // minus our handshake
		if budget := 2*max(f.s.metaPieces(), 1) + 2; answers > budget {
			t.Fatalf("round %d: %d metadata answers sent, budget %d", round, answers, budget)
		}
	}
	if !f.c.Banned(addr) {
		t.Fatalf("%s dropped %d times for abuse and not banned", addr, strikesToBan)
	}
	again, _ := f.attachAt(addr, 99)
	if !again.isClosed() {
		t.Fatal("banned address got a connection")
	}
}

// Blocks that crossed our cancels are forgiven; the download still ends
// with the right bytes.
func TestCancelledBlocksForgiven(t *testing.T) {
	f := newFixture(t, false)
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	asked := map[[2]uint32]bool{}
	for _, m := range fc.sent(t) {
		if m.Type == wire.Request {
			asked[[2]uint32{m.Index, m.Begin}] = true
		}
	}
	if len(asked) == 0 {
		t.Fatal("no requests to an unchoking seed")
	}
	// Requests from here on are answered below: the re-requests after the
	// timeout may be for other blocks than the cancelled ones.
	seen := len(fc.sent(t))
	// Time the requests out: the cancels let the blocks still arrive.
	f.tick(requestTimeout + time.Second)
	if fc.sentTypes(t)[wire.Cancel] != len(asked) {
		t.Fatalf("%d cancels for %d requests", fc.sentTypes(t)[wire.Cancel], len(asked))
	}
	for k := range asked {
		off := int(k[0])*32768 + int(k[1])
		n := min(16384, len(f.data)-off)
		f.deliver(h, wire.Message{Type: wire.Piece, Index: k[0], Begin: k[1], Block: append([]byte(nil), f.data[off:off+n]...)})
	}
	if fc.isClosed() {
		t.Fatal("blocks that crossed our cancels closed the connection")
	}
	// Answer every request since the timeout, re-requests of a block
	// included: a block discarded above (not asked again yet when it
	// arrived) is asked for again later.
	f.waitFor("the download to complete", func() bool {
		msgs := fc.sent(t)
		for _, m := range msgs[seen:] {
			if m.Type == wire.Request {
				off := int(m.Index)*32768 + int(m.Begin)
				h.Deliver([]wire.Message{{Type: wire.Piece, Index: m.Index, Begin: m.Begin, Block: append([]byte(nil), f.data[off:off+int(m.Length)]...)}})
			}
		}
		seen = len(msgs)
		f.sync()
		return f.s.Snapshot().State == StateSeeding
	})
	if sn := f.s.Snapshot(); sn.Wasted == 0 {
		t.Fatal("no block counted wasted: the crossed blocks were all asked again, so the test proves nothing")
	}
}

// Blocks nobody asked for are never used; past a few they cost the sender
// its connection.
func TestUnrequestedBlocksCostTheSender(t *testing.T) {
	f := newFixture(t, true)
	fc, h := f.attach(1)
	var sent int
	for sent = 0; sent < 100 && !fc.isClosed(); sent++ {
		f.deliver(h, wire.Message{Type: wire.Piece, Index: 4, Begin: 0, Block: make([]byte, 16384)})
	}
	if !fc.isClosed() {
		t.Fatal("100 unrequested blocks and still connected")
	}
	if limit := unrequestedSlack/blockSize + maxOffences; sent > limit {
		t.Fatalf("closed after %d unrequested blocks, want at most %d", sent, limit)
	}
	f.tick(time.Second)
	if sn := f.s.Snapshot(); sn.Wasted != int64(sent)*16384 {
		t.Fatalf("wasted %d, want the %d unrequested blocks counted", sn.Wasted, sent)
	}
	got, err := os.ReadFile(filepath.Join(f.dir, "fx.bin"))
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("unrequested zeros reached the disk: %v", err)
	}
}

// PEX may not make us dial broadcast, multicast, unspecified or reserved
// addresses, port 0 or ourselves, and only 50 peers count per message.
func TestPexAddressesFiltered(t *testing.T) {
	f := newFixture(t, false)
	f.c.cfg.ListenPort = 6881
	fc, h := f.attach(1)
	f.deliver(h, extHandshake(t))
	bad := []string{"0.0.0.0:6881", "255.255.255.255:6881", "224.0.0.1:6881", "239.1.2.3:80", "10.1.1.1:0",
		"127.0.0.1:6881", "[::]:6881", "[ff02::1]:6881", "240.0.0.1:80", "0.1.2.3:80"}
	var msg ext.Pex
	for _, a := range bad {
		msg.Added = append(msg.Added, ext.PexPeer{Addr: netip.MustParseAddrPort(a)})
	}
	for i := range 60 {
		msg.Added = append(msg.Added, ext.PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 0, byte(i + 1)}), 7000)})
	}
	payload := ext.AppendPex(nil, msg)
	parsed, err := ext.ParsePex(payload)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(h, wire.Message{Type: wire.Extended, ExtID: extPex, ExtPayload: payload})
	f.tick(time.Second)
	known := map[netip.AddrPort]bool{}
	for _, p := range f.s.Snapshot().Peers {
		if !p.Connected {
			known[p.Addr] = true
		}
	}
	for _, a := range bad {
		if known[netip.MustParseAddrPort(a)] {
			t.Errorf("learned %s from PEX", a)
		}
	}
	// Only the first 50 the message lists are read; the bad ones among
	// them are dropped.
	want := 0
	for _, p := range parsed.Added[:maxPexAdded] {
		if p.Addr.Addr().Is4() && p.Addr.Addr().As4()[0] == 10 && p.Addr.Addr().As4()[1] == 2 {
			want++
		}
	}
	if len(parsed.Added) <= maxPexAdded || want == 0 || len(known) != want {
		t.Errorf("learned %d addresses, want %d (the good ones among the first 50 of %d)", len(known), want, len(parsed.Added))
	}
	var offences int
	f.s.post(evFunc(func(s *Session) {
		for _, p := range s.swarm.peers {
			offences = int(p.offences)
		}
	}))
	f.sync()
	if offences != 1 || fc.isClosed() {
		t.Errorf("an oversized PEX message: %d offences, closed %v; want one offence, still connected", offences, fc.isClosed())
	}
}

// A peer whose messages pile up faster than its session handles them is
// refused by Deliver (the network layer then closes it) and struck.
func TestDeliverBoundsUndelivered(t *testing.T) {
	f := newFixture(t, true)
	fc, h := f.attach(1)
	block := make(chan struct{})
	f.s.post(evFunc(func(*Session) { <-block })) // the session is busy
	msgs := make([]wire.Message, 1024)
	var refused bool
	for range 2 * (maxUndeliveredBase + f.mi.NumPieces()) / len(msgs) {
		if h.Deliver(msgs) != nil {
			refused = true
			break
		}
	}
	close(block)
	if !refused {
		t.Fatalf("Deliver took %d messages for a stalled session", 2*(maxUndeliveredBase+f.mi.NumPieces()))
	}
	f.sync()
	if !fc.isClosed() {
		t.Fatal("flooding peer not closed")
	}
}

// A stopped torrent keeps showing what it has verified.
func TestStoppedKeepsItsPieces(t *testing.T) {
	f := newFixture(t, true)
	if err := f.c.Stop(f.mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	sn := f.s.Snapshot()
	if sn.State != StateStopped || sn.Have != f.mi.NumPieces() || sn.Progress() != 1 {
		t.Fatalf("stopped: state %v have %d/%d progress %.2f", sn.State, sn.Have, f.mi.NumPieces(), sn.Progress())
	}
	for i := range f.mi.NumPieces() {
		if sn.Bitfield[i/8]&(0x80>>(i%8)) == 0 {
			t.Fatalf("bitfield lost piece %d", i)
		}
	}
	for _, fs := range sn.Files {
		if fs.Progress != 1 {
			t.Fatalf("file %s progress %.2f", fs.Path, fs.Progress)
		}
	}
}

// Rates shown fall to zero within two ticks of the last byte, also once the
// peer is gone and nothing else would publish.
func TestRatesFallToZeroAfterTraffic(t *testing.T) {
	f := newFixture(t, true)
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.Interested})
	for i := range 4 {
		f.deliver(h, wire.Message{Type: wire.Request, Index: uint32(i), Begin: 0, Length: 16384})
	}
	f.waitFor("blocks served", func() bool { return fc.sentTypes(t)[wire.Piece] == 4 })
	f.tick(500 * time.Millisecond)
	if f.s.Snapshot().UpRate == 0 {
		t.Fatal("no upload rate shown right after uploading")
	}
	f.deliver(h) // nothing; the peer leaves:
	h.Closed(nil)
	f.sync()
	f.tick(time.Second)
	f.tick(time.Second)
	if sn := f.s.Snapshot(); sn.UpRate != 0 || sn.DownRate != 0 {
		t.Fatalf("2 s after the last byte and the peer gone: up %d down %d B/s, want 0", sn.UpRate, sn.DownRate)
	}
}

// A peer that connects while we check learns our pieces when the check
// ends: HAVE-NONE at the greeting, then a HAVE per piece.
func TestPeerConnectedDuringCheckGetsHaves(t *testing.T) {
	f := newFixture(t, true)
	fc := &fakeConn{addr: netip.MustParseAddrPort("10.3.3.3:6000")}
	hs := wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: f.mi.InfoHash}
	hs.PeerID[0] = 3
	f.s.post(evFunc(func(s *Session) {
		if err := s.recheck(); err != nil {
			t.Error(err)
		}
		if s.life.state != StateChecking {
			t.Errorf("recheck left state %v", s.life.state)
		}
		attachEvent{&peer{conn: fc, addr: fc.addr, peerID: hs.PeerID, reserved: hs.Reserved}}.handle(s)
	}))
	f.sync()
	f.waitFor("the check to end", func() bool { return f.s.Snapshot().State == StateSeeding })
	types := fc.sentTypes(t)
	if types[wire.HaveNone] != 1 || types[wire.HaveAll] != 0 {
		t.Fatalf("greeting during the check: %v, want have-none", types)
	}
	if types[wire.Have] != f.mi.NumPieces() {
		t.Fatalf("%d HAVEs after the check, want %d", types[wire.Have], f.mi.NumPieces())
	}
}

// The ban and strike tables stay bounded whatever the number of addresses.
func TestBanListBounded(t *testing.T) {
	b := newBanList()
	b.max = 100
	now := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		key := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 0)
		b.ban(key, now, time.Duration(i+1)*time.Minute)
		b.strike(netip.AddrPortFrom(key.Addr(), 1), now)
	}
	if len(b.until) > b.max || len(b.strikes) > b.max {
		t.Fatalf("tables hold %d bans and %d strikes, bound %d", len(b.until), len(b.strikes), b.max)
	}
	last := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 3, 231}), 0)
	if !b.banned(last, now) {
		t.Fatal("the latest ban was evicted")
	}
	if b.banned(last, now.Add(1001*time.Minute)) {
		t.Fatal("a ban outlived its time")
	}
}

// hintDialer records the addresses the session says speak uTP; it dials
// nothing.
type hintDialer struct {
	mu  sync.Mutex
	utp []netip.AddrPort
}

func (d *hintDialer) Dial(netip.AddrPort, metainfo.Hash, *Session) {}

func (d *hintDialer) PreferUTP(a netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.utp = append(d.utp, a)
}

// A PEX message's uTP flag (0x04) reaches a dialer that dials uTP, for
// the flagged peers only.
func TestPexUTPFlagReachesDialer(t *testing.T) {
	f := newFixture(t, false)
	d := &hintDialer{}
	f.c.cfg.Dialer = d
	_, h := f.attach(1)
	f.deliver(h, extHandshake(t))
	flagged, plain := netip.MustParseAddrPort("10.3.0.1:7000"), netip.MustParseAddrPort("10.3.0.2:7000")
	msg := ext.Pex{Added: []ext.PexPeer{{Addr: flagged, Flags: ext.PexUTP | 0x10}, {Addr: plain, Flags: 0x10}}}
	f.deliver(h, wire.Message{Type: wire.Extended, ExtID: extPex, ExtPayload: ext.AppendPex(nil, msg)})
	f.sync()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.utp) != 1 || d.utp[0] != flagged {
		t.Fatalf("uTP hints %v, want just %v", d.utp, flagged)
	}
}
