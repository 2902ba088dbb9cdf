package engine

import (
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
	addrs := make([]netip.AddrPort, 0, len(px.Added))
	for _, a := range px.Added {
		addrs = append(addrs, a.Addr)
	}
	s.learn(addrs, "pex")
}

// sendPex tells each peer that speaks ut_pex what changed in our swarm, at
// most once a minute per peer (PexState enforces it).
func (s *Session) sendPex() {
	if s.private() || len(s.peers) < 2 {
		return
	}
	var swarm []ext.PexPeer
	for _, p := range s.peers {
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
		if p.hasAll || (p.has != nil && p.has.Count() == uint(s.numPieces()) && s.numPieces() > 0) {
			flags |= pexSeed
		}
		swarm = append(swarm, ext.PexPeer{Addr: addr, Flags: flags})
	}
	for _, p := range s.peers {
		id := p.extM["ut_pex"]
		if id <= 0 {
			continue
		}
		if msg, ok := p.pex.Update(s.now, swarm, s.private()); ok {
			s.send(p, wire.AppendExtended(nil, uint8(id), ext.AppendPex(nil, msg)))
		}
	}
}
