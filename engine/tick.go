package engine

import (
	"errors"
	"net/netip"
	"time"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/engine/wire"
)

const (
	keepAliveEvery = 90 * time.Second
	idleTimeout    = 3 * time.Minute
	snubTimeout    = 60 * time.Second
	// dialsPerTick bounds how many new connections one torrent starts per
	// tick, so a long peer list does not flood the half-open limit.
	dialsPerTick = 16
)

// tickEvent is the session's clock: the client posts one every second to
// every running session. Tests post them with whatever time they like.
type tickEvent struct{ now time.Time }

func (e tickEvent) handle(s *Session) {
	s.now = e.now
	if !s.running() {
		s.publish()
		return
	}
	s.limits.refill(s.now)
	s.requestTimeouts()
	for _, p := range s.swarm.peers {
		s.tickPeer(p)
	}
	s.scaleDepths()
	if s.c.autoSlots() {
		s.reportSlots()
		s.fillSlots()
	}
	if s.upload.choker.Due(s.now) {
		s.rechoke()
	}
	s.announce(tracker.None)
	s.connectPeers()
	s.dhtAnnounce()
	s.sendPex()
	s.fetchMetadata()
	s.seedTime.account(s.now)
	s.checkSeedLimits()
	s.publish()
	s.saveResume(false)
}

// idleTick bounds how long an idle torrent goes without a tick.
const idleTick = 30 * time.Second

// updateWake tells the ticker when this session next needs a tick. A
// torrent with no peers, nothing being fetched and nothing to dial needs one
// only for its next announce or saved record: 10,000 idle torrents then cost
// the ticker a map walk, not 10,000 wake-ups a second.
func (s *Session) updateWake() {
	if s.webBusy() {
		// Fetching from web seeds: their rates and ours move every second.
		s.wakeAt.Store(0)
		return
	}
	if sn := s.snap.Load(); len(s.swarm.peers) > 0 || s.mag.fetch != nil || s.life.state == StateChecking ||
		(sn != nil && (sn.DownRate != 0 || sn.UpRate != 0)) {
		// Rates still shown must be brought down to zero tick by tick.
		s.wakeAt.Store(0)
		return
	}
	next := s.now.Add(idleTick)
	if s.disc.trackers.Len() > 0 {
		if at := s.disc.trackers.NextAnnounceAt(); at.Before(next) {
			next = at
		}
	}
	if s.c.cfg.DHT != nil && s.disc.dhtNext.Before(next) {
		next = s.disc.dhtNext
	}
	if at, ok := s.webNextRetry(); ok && at.Before(next) {
		next = at
	}
	if s.persist.dirty {
		next = s.now.Add(resumeEvery)
	}
	if at := s.progressWake(); !at.IsZero() && at.Before(next) {
		next = at
	}
	next, busy := s.book.nextDial(next)
	if busy {
		s.wakeAt.Store(0)
		return
	}
	s.wakeAt.Store(next.UnixNano())
}

func (s *Session) tickPeer(p *peer) {
	switch {
	case s.now.Sub(p.lastRecv) > idleTimeout:
		s.dropPeer(p, errors.New("engine: peer idle"))
		return
	case s.now.Sub(p.lastSend) > keepAliveEvery:
		s.send(p, wire.AppendKeepAlive(nil))
	}
	if !p.peerChoking && s.dl.pick != nil && s.dl.pick.Outstanding(picker.PeerID(p.id)) > 0 &&
		s.now.Sub(latest(p.lastBlock, p.connectedAt)) > snubTimeout {
		p.snubbed = true
	}
	p.pipe.Update(s.now, p.down.Rate(s.now))
	s.updateSendBound(p)
}

// connectPeers dials known, unconnected peers while under the limits.
func (s *Session) connectPeers() {
	if s.c.cfg.Dialer == nil || !s.running() {
		return
	}
	room := s.c.cfg.MaxPeersPerTorrent - len(s.swarm.peers)
	dialing := s.book.dialing()
	room -= dialing
	if int(s.c.conns.Load()) >= s.c.cfg.MaxPeers {
		return
	}
	if n := min(room, dialsPerTick-dialing, s.c.cfg.MaxPeers-int(s.c.conns.Load())); n > 0 {
		complete := s.complete()
		for _, a := range s.book.candidates(s.now, n, func(k *knownPeer) bool {
			// A seed has nothing for a seed.
			return s.isBanned(k.addr) || (complete && k.lastPeer != nil && k.lastPeer.isSeed)
		}) {
			room--
			s.c.cfg.Dialer.Dial(a, s.ih, s)
		}
	}
	if room > 0 && len(s.swarm.peers) < s.c.cfg.MaxPeersPerTorrent/2 {
		s.disc.trackers.WantPeers(s.now)
	}
}

// AddPeers tells the session about peer addresses (from the user, the CLI or
// a magnet's x.pe). Safe for concurrent use.
func (s *Session) AddPeers(addrs []netip.AddrPort, source string) {
	s.post(evFunc(func(s *Session) {
		s.learn(addrs, source)
		s.connectPeers()
	}))
}

func (s *Session) learn(addrs []netip.AddrPort, source string) {
	s.book.learn(addrs, source, s.c.dialable)
	s.dirty = true
}

var (
	reserved4 = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255, the broadcast
	thisNet4  = netip.MustParsePrefix("0.0.0.0/8")
)

// dialable reports whether an address someone told us about (a tracker, a
// PEX message, the DHT) may be dialed: a unicast address with a port that
// is not our own listener. Whoever sends the list must not make us dial
// broadcast or multicast addresses, nor ourselves.
func (c *Client) dialable(a netip.AddrPort) bool {
	ip := a.Addr()
	switch {
	case !a.IsValid() || a.Port() == 0 || ip.Zone() != "":
		return false
	case ip.IsUnspecified() || ip.IsMulticast() || reserved4.Contains(ip) || thisNet4.Contains(ip):
		return false
	case a.Port() == c.cfg.ListenPort && c.isLocalAddr(ip):
		return false // ourselves, as the tracker or a peer sees us
	}
	return true
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
