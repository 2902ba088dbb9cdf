package engine

import (
	"context"
	"net/netip"
	"time"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// DHT is what sessions need of a BEP 5 node (engine/dht implements it). The
// lookups block, so sessions run them on goroutines of their own. Safe for
// concurrent use.
type DHT interface {
	// Announce looks ih up, passing found peers to fn, then announces that
	// we accept peers for it on TCP port.
	Announce(ctx context.Context, ih metainfo.Hash, port int, fn func([]netip.AddrPort)) (int, error)
	// AddNode offers a node learned from a peer's port message.
	AddNode(addr netip.AddrPort)
	// LocalAddr is the node's UDP address; its port goes in port messages.
	LocalAddr() netip.AddrPort
}

const (
	dhtEvery      = 15 * time.Minute // regular re-announce, as libtorrent
	dhtWhenShort  = 2 * time.Minute  // sooner while short of peers
	dhtLookupTime = 90 * time.Second
)

// dhtAnnounce runs a DHT lookup and announce when one is due; never for a
// private torrent (BEP 27). Found peers come back as AddPeers events.
func (s *Session) dhtAnnounce() {
	d := s.c.cfg.DHT
	if d == nil || s.private() || !s.running() || !s.disc.dhtDue(s.now, len(s.swarm.peers) < s.c.cfg.MaxPeersPerTorrent/2) {
		return
	}
	ih, port, ctx := s.ih, int(s.c.cfg.ListenPort), s.c.ctx
	s.submit(s.c.net, func() event {
		ctx, cancel := context.WithTimeout(ctx, dhtLookupTime)
		defer cancel()
		d.Announce(ctx, ih, port, func(peers []netip.AddrPort) {
			s.AddPeers(append([]netip.AddrPort(nil), peers...), "dht")
		})
		return evFunc(func(s *Session) { s.disc.dhtRunning = false })
	})
}

// sendPort tells a DHT-capable peer where our node listens (BEP 5 port).
func (s *Session) sendPort(p *peer) {
	d := s.c.cfg.DHT
	if d == nil || s.private() || !p.reserved.SupportsDHT() {
		return
	}
	if port := d.LocalAddr().Port(); port != 0 {
		s.send(p, wire.AppendPort(nil, port))
	}
}

// onPort adds the peer's DHT node, as BEP 5 suggests.
func onPort(s *Session, p *peer, m *wire.Message) error {
	if d := s.c.cfg.DHT; d != nil && !s.private() && m.Port != 0 {
		d.AddNode(netip.AddrPortFrom(p.addr.Addr(), m.Port))
	}
	return nil
}
