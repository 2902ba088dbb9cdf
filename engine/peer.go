package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/wire"
)

// Peer is the network layer's handle on a connected peer: it delivers that
// peer's messages and its closing to the owning session. Its fields are
// written once, before the handle is published, and the session owns the
// rest of the peer's state. Deliver and Closed are safe for concurrent use;
// netio calls them from the connection's event loop, which keeps one peer's
// events in order.
type Peer struct {
	s *Session
	p *peer
	// undelivered counts messages handed to Deliver that the session has
	// not handled yet; bounded by maxUndelivered.
	undelivered atomic.Int32
	maxUndeliv  int32
}

// peer is one connection as the session sees it. Session-owned.
type peer struct {
	id       picker.PeerID
	conn     PeerConn
	addr     netip.AddrPort
	peerID   [20]byte
	reserved wire.Reserved
	outbound bool
	// What kind of link (ConnKind), fixed at Attach.
	encrypted, utp bool
	attached       bool
	closed         bool
	hasAll         bool

	has          *bitset.BitSet
	gotBitfield  bool
	amChoking    bool
	amInterested bool
	peerChoking  bool
	peerInterest bool
	fast         bool
	ext          bool
	snubbed      bool
	extM         map[string]int
	client       string
	metaSize     int64  // the peer's metadata_size, for magnets
	listenPort   uint16 // from the extension handshake's p, for PEX

	// What the peer announced before the torrent's size was known.
	pendingAll   bool
	owedHaves    bool // greeted before our pieces were known
	pendingBits  []byte
	pendingHaves []uint32
	pex          *ext.PexState

	pipe        *picker.Pipeline
	down, up    picker.Rate
	downloaded  int64
	uploaded    int64
	connectedAt time.Time
	lastRecv    time.Time
	lastSend    time.Time
	lastBlock   time.Time
	rttProbe    time.Time // requests went out into an empty pipeline; zero once timed
	unchokedAt  time.Time
	// unrequested is what the peer may still send us without our asking
	// (blocks in flight when we cancelled or it choked us); past it,
	// unrequested blocks are offences.
	unrequested  int64
	failures     int32  // pieces that failed their hash with our data from this peer
	offences     int32  // requests dropped for asking more than a peer needs (guard.go)
	metaRequests int32  // ut_metadata requests it sent us
	reading      int32  // reads handed to the disk pool
	blocking     bool   // over sendBound; resumes on drain
	sendBound    int32  // unsent bytes allowed before blocking (updateSendBound)
	servedAt     uint64 // uploadQueue.served when a read was last handed out for it

	uploads []picker.Request // requests from the peer waiting for a disk read
}

// Attach hands a handshaken connection to the session: hs is what the peer
// sent. The session sends its bitfield and extension handshake from its own
// thread. Safe for concurrent use.
func (s *Session) Attach(conn PeerConn, hs wire.Handshake, outbound bool) *Peer {
	p := &peer{conn: conn, addr: conn.RemoteAddr(), peerID: hs.PeerID, reserved: hs.Reserved, outbound: outbound}
	if k, ok := conn.(ConnKind); ok {
		p.encrypted, p.utp = k.Encrypted(), k.Transport() == "utp"
	}
	s.post(attachEvent{p})
	h := &Peer{s: s, p: p, maxUndeliv: maxUndeliveredBase}
	if mi := s.MetaInfo(); mi != nil {
		// A peer may announce its pieces as one HAVE each.
		h.maxUndeliv += int32(min(mi.NumPieces(), 1<<30))
	}
	return h
}

// maxUndeliveredBase bounds the messages a peer may have waiting for its
// session beyond one HAVE per piece: pipelines (500 blocks each way) fit
// well inside it, a flood of keep-alives or HAVEs from a peer faster than
// its session does not.
const maxUndeliveredBase = 4096

// DialFailed reports that an outbound dial to addr did not produce a
// connection. Safe for concurrent use.
func (s *Session) DialFailed(addr netip.AddrPort, err error) {
	s.post(evFunc(func(s *Session) {
		busy := errors.Is(err, ErrDialBusy)
		if !busy && s.c.debugOn() {
			s.logAt(slog.LevelDebug, "dial failed", "peer", addr.String(), "error", err.Error())
		}
		s.book.dialFailed(addr, busy, s.now, time.Duration(s.rng.Int63n(int64(4*time.Second))))
	}))
}

// Deliver hands decoded messages to the session, which takes ownership of
// msgs and of every Block in it (see BlockBuffer). It refuses them, and
// counts an offence, when the session is that far behind on this peer: the
// network layer then closes the connection.
func (h *Peer) Deliver(msgs []wire.Message) error {
	if h.undelivered.Add(int32(len(msgs))) > h.maxUndeliv {
		h.undelivered.Add(-int32(len(msgs)))
		for i := range msgs {
			releaseBlock(msgs[i].Block)
		}
		h.s.post(evFunc(func(s *Session) { s.dropAbuser(h.p, errFlooding) }))
		return errFlooding
	}
	h.s.post(msgsEvent{h, msgs})
	return nil
}

// Writable reports that the outbound buffer drained after NotifyWritable.
func (h *Peer) Writable() {
	h.s.post(evFunc(func(s *Session) {
		h.p.blocking = false
		s.upload.resume(h.p)
	}))
}

// Closed reports that the connection is gone.
func (h *Peer) Closed(err error) { h.s.post(closedEvent{h.p, err}) }

// Session returns the owning session.
func (h *Peer) Session() *Session { return h.s }

type attachEvent struct{ p *peer }

func (e attachEvent) handle(s *Session) {
	p := e.p
	if reason := s.refuse(p); reason != nil {
		if s.c.debugOn() {
			s.logAt(slog.LevelDebug, "peer refused", "peer", p.addr.String(), "reason", reason.Error())
		}
		p.closed = true
		p.conn.Close()
		if p.outbound {
			s.book.refused(p.addr, s.now)
		}
		return
	}
	s.swarm.add(p)
	p.attached = true
	p.amChoking, p.peerChoking = true, true
	p.fast = p.reserved.SupportsFast()
	p.ext = p.reserved.SupportsExtended()
	if s.mi != nil {
		p.has = bitsetFor(s.mi)
	}
	p.pex = ext.NewPexState(p.addr)
	p.unrequested = unrequestedSlack
	p.pipe = picker.NewPipeline()
	p.connectedAt, p.lastRecv, p.lastSend = s.now, s.now, s.now
	s.c.conns.Add(1)
	s.book.connected(p.addr, p.outbound)
	s.sendGreeting(p)
	s.sendPort(p)
	s.dirty = true
}

// refuse says why a new connection must not be kept, or nil.
func (s *Session) refuse(p *peer) error {
	switch {
	case !s.running():
		return errors.New("engine: torrent not running")
	case p.peerID == s.c.cfg.PeerID:
		return errors.New("engine: connection to ourselves")
	case s.isBanned(p.addr):
		return errors.New("engine: banned peer")
	case len(s.swarm.peers) >= s.c.cfg.MaxPeersPerTorrent:
		return errors.New("engine: torrent connection limit")
	case int(s.c.conns.Load()) >= s.c.cfg.MaxPeers:
		return errors.New("engine: global connection limit")
	}
	for _, o := range s.swarm.peers {
		switch {
		case o.addr == p.addr:
			return errors.New("engine: duplicate connection")
		case o.peerID != p.peerID:
		case s.keepNewer(o, p):
			// Both sides dialed each other at once. Each side must keep
			// the same one of the two connections, or each would close
			// the one the other kept: keep the one whose dialer has the
			// smaller peer id.
			s.dropPeer(o, errors.New("engine: duplicate connection, the other one is kept"))
		default:
			return errors.New("engine: duplicate connection")
		}
	}
	return nil
}

// keepNewer decides between two connections to the same peer.
func (s *Session) keepNewer(old, new *peer) bool {
	if old.outbound == new.outbound {
		return false
	}
	dialer := func(p *peer) []byte {
		if p.outbound {
			return s.c.cfg.PeerID[:]
		}
		return p.peerID[:]
	}
	return bytes.Compare(dialer(new), dialer(old)) < 0
}

// sendGreeting sends what follows the handshake: the extension handshake,
// then our pieces (have-all/have-none where the Fast extension allows).
func (s *Session) sendGreeting(p *peer) {
	var buf []byte
	if p.ext {
		eh := wire.ExtHandshake{V: ClientVersion, Port: int(s.c.cfg.ListenPort), ReqQ: maxPeerRequests,
			YourIP: p.addr.Addr(), M: map[string]int{"ut_metadata": extMetadata}}
		if !s.private() {
			eh.M["ut_pex"] = extPex
		}
		if s.mag.srv != nil {
			eh.MetadataSize = s.mag.srv.Size()
		}
		if b, err := wire.EncodeExtHandshake(eh); err == nil {
			buf = wire.AppendExtended(buf, 0, b)
		}
	}
	switch have := s.have(); {
	case s.dl.pick == nil:
		// Checking or fetching metadata: we claim nothing yet, and tell
		// the peer piece by piece once the check ends (announceHaves).
		p.owedHaves = true
		if p.fast {
			buf = wire.AppendSimple(buf, wire.HaveNone)
		}
	case p.fast && s.seed():
		buf = wire.AppendSimple(buf, wire.HaveAll)
	case p.fast && have.None():
		buf = wire.AppendSimple(buf, wire.HaveNone)
	case !have.None():
		buf = wire.AppendBitfield(buf, bitfieldBytes(have, s.mi.NumPieces()))
	}
	if len(buf) > 0 {
		s.send(p, buf)
	}
}

func (s *Session) send(p *peer, bufs ...[]byte) {
	if p.closed {
		return
	}
	p.conn.Send(bufs...)
	p.lastSend = s.now
}

type closedEvent struct {
	p   *peer
	err error
}

func (e closedEvent) handle(s *Session) {
	if !e.p.closed {
		s.forget(e.p)
	}
}

// dropPeer closes a peer's connection and forgets it.
func (s *Session) dropPeer(p *peer, reason error) {
	if p.closed {
		return
	}
	p.conn.Close()
	s.forget(p)
	if s.c.debugOn() {
		s.logAt(slog.LevelDebug, "peer dropped", "peer", p.addr.String(), "reason", reason.Error())
	}
}

// forget removes every trace of p from the session's state.
func (s *Session) forget(p *peer) {
	p.closed = true
	if !p.attached {
		return
	}
	s.swarm.remove(p)
	s.c.conns.Add(-1)
	if s.dl.pick != nil {
		s.dl.pick.PeerGone(picker.PeerID(p.id))
	}
	if s.book.known[p.addr] != nil {
		snap := s.peerSnapshot(p)
		snap.Connected = false
		s.book.disconnected(p.addr, s.now, &snap)
	}
	p.uploads = nil
	delete(s.upload.waiting, p.id)
	s.dirty = true
}

// discardContributions throws away every partial piece p contributed to.
func (s *Session) discardContributions(p *peer) { s.discardFrom(picker.PeerID(p.id)) }

// discardFrom throws away every partial piece the peer or web seed with
// picker id who contributed to.
func (s *Session) discardFrom(who picker.PeerID) {
	if s.dl.pick == nil {
		return
	}
	for piece, pb := range s.dl.pieces {
		for _, id := range s.dl.pick.Contributors(piece) {
			if id == who {
				s.failPiece(piece)
				s.stats.wasted += int64(len(pb.data))
				s.recycle(pb.data)
				delete(s.dl.pieces, piece)
				break
			}
		}
	}
}

func bitfieldBytes(bs *bitset.BitSet, n int) []byte {
	out := make([]byte, (n+7)/8)
	for i, ok := bs.NextSet(0); ok && int(i) < n; i, ok = bs.NextSet(i + 1) {
		out[i/8] |= 0x80 >> (i % 8)
	}
	return out
}

// setBits sets in bs the pieces a BEP 3 bitfield lists.
func setBits(bs interface{ Set(uint) *bitset.BitSet }, bf []byte, n int) {
	for i := range n {
		if bf[i/8]&(0x80>>(i%8)) != 0 {
			bs.Set(uint(i))
		}
	}
}

// announceHaves tells a peer greeted while we were checking what we have,
// one HAVE per piece: a bitfield may only be the first message.
func (s *Session) announceHaves(p *peer) {
	if !p.owedHaves || s.dl.pick == nil {
		return
	}
	p.owedHaves = false
	have := s.dl.pick.Have()
	buf := make([]byte, 0, 9*have.Count())
	for i, ok := have.NextSet(0); ok; i, ok = have.NextSet(i + 1) {
		buf = wire.AppendHave(buf, uint32(i))
	}
	if len(buf) > 0 {
		s.send(p, buf)
	}
}

// registerPieces tells a new picker what a peer already announced.
func (s *Session) registerPieces(p *peer) {
	if p.has == nil {
		return
	}
	id := picker.PeerID(p.id)
	if p.hasAll {
		s.dl.pick.PeerHaveAll(id)
	} else if p.has.Any() {
		s.dl.pick.PeerBitfield(id, p.has)
	}
	s.updateInterest(p)
}

func (s *Session) private() bool { return s.mi != nil && s.mi.Private }
