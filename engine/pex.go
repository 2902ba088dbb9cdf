package engine

import (
	"fmt"
	"net/netip"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/wire"
)

// PEX flags of BEP 11 that we set.
const (
	pexSeed      = 0x02
	pexReachable = 0x10
)

// onPexMsg learns peers from a ut_pex message; never for private torrents.
func (s *Session) onPexMsg(p *peer, payload []byte) {
	if s.private() || !p.pex.Received(s.now) {
		return // private, or faster than once a minute: ignored
	}
	px, err := ext.ParsePex(payload)
	if err != nil {
		return
	}
	added := px.Added
	if len(added) > maxPexAdded {
		// BEP 11 caps a message at 50 added peers: the rest is not
		// read, and the sender is told off.
		added = added[:maxPexAdded]
		s.offence(p, fmt.Sprintf("PEX message with %d added peers", len(px.Added)))
	}
	addrs := make([]netip.AddrPort, 0, len(added))
	hints, _ := s.c.cfg.Dialer.(UTPHints)
	for _, a := range added {
		addrs = append(addrs, a.Addr)
		if hints != nil && a.Flags&ext.PexUTP != 0 {
			hints.PreferUTP(a.Addr)
		}
	}
	s.learn(addrs, "pex")
}

// maxPexAdded is BEP 11's limit on the peers one message adds.
const maxPexAdded = 50

// sendPex tells each peer that speaks ut_pex what changed in our swarm, at
// most once a minute per peer (PexState enforces it).
func (s *Session) sendPex() {
	if s.private() || len(s.swarm.peers) < 2 {
		return
	}
	var swarm []ext.PexPeer
	for _, p := range s.swarm.peers {
		addr := p.addr
		if !p.outbound {
			if p.listenPort == 0 {
				continue // its listening port is unknown: useless to others
			}
			addr = netip.AddrPortFrom(p.addr.Addr(), p.listenPort)
		}
		var flags byte
		if p.outbound {
			flags |= pexReachable
		}
		if u, ok := p.conn.(interface{ UTP() bool }); ok && u.UTP() {
			flags |= ext.PexUTP // it took a uTP connection, so it speaks uTP
		}
		if p.hasAll || (p.has != nil && p.has.Count() == uint(s.numPieces()) && s.numPieces() > 0) {
			flags |= pexSeed
		}
		swarm = append(swarm, ext.PexPeer{Addr: addr, Flags: flags})
	}
	for _, p := range s.swarm.peers {
		id := p.extM["ut_pex"]
		if id <= 0 {
			continue
		}
		if msg, ok := p.pex.Update(s.now, swarm, s.private()); ok {
			s.send(p, wire.AppendExtended(nil, uint8(id), ext.AppendPex(nil, msg)))
		}
	}
}
