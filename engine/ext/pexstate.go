package ext

import (
	"net/netip"
	"slices"
	"time"
)

const (
	// PexInterval is the least time between two PEX messages to one peer.
	// BEP 11 asks for at most one a minute; libtorrent disconnects peers
	// that send faster.
	PexInterval = time.Minute
	// MaxPexSend bounds the added and the dropped list of one message we
	// send, as libtorrent does; what does not fit goes out a minute later.
	MaxPexSend = 50
	// MaxPexTracked bounds how many peers we remember having told one
	// connection about, so a huge swarm cannot grow per-connection state.
	MaxPexTracked = 1000
)

// PexState is the PEX bookkeeping for one connection: what we last told the
// remote peer and when. It is plain data; the session owns one per
// connection that negotiated ut_pex and calls it from its own goroutine
// only. It must never be used for a private torrent (BEP 27 forbids PEX
// there); Update enforces that from the flag the caller passes.
type PexState struct {
	remote   netip.AddrPort
	told     map[netip.AddrPort]struct{}
	lastSent time.Time
	sentAny  bool
	lastRecv time.Time
	recvAny  bool
}

// NewPexState starts the bookkeeping for the connection to remote, which is
// never advertised back to itself.
func NewPexState(remote netip.AddrPort) *PexState {
	return &PexState{remote: remote, told: make(map[netip.AddrPort]struct{})}
}

// Update returns the message to send to the remote peer as of now, given
// the swarm's currently connected peers (with their flags), and whether
// there is one. It returns nothing for a private torrent, within
// PexInterval of the previous message, or when nothing changed. Added
// holds connected peers not yet told (at most MaxPexSend, in the order
// given), Dropped holds told peers no longer connected (at most MaxPexSend,
// in address order); the rest waits for a later message. Peers without a
// port and the remote itself are never sent. Session goroutine only.
func (s *PexState) Update(now time.Time, connected []PexPeer, private bool) (Pex, bool) {
	if private || (s.sentAny && now.Sub(s.lastSent) < PexInterval) {
		return Pex{}, false
	}
	var msg Pex
	current := make(map[netip.AddrPort]struct{}, len(connected))
	for _, c := range connected {
		if !appendable(c.Addr) || c.Addr == s.remote {
			continue
		}
		if _, dup := current[c.Addr]; dup {
			continue
		}
		current[c.Addr] = struct{}{}
		_, told := s.told[c.Addr]
		if !told && len(msg.Added) < MaxPexSend && len(s.told) < MaxPexTracked {
			msg.Added = append(msg.Added, c)
			s.told[c.Addr] = struct{}{}
		}
	}
	for ap := range s.told {
		if _, ok := current[ap]; !ok {
			msg.Dropped = append(msg.Dropped, ap)
		}
	}
	slices.SortFunc(msg.Dropped, netip.AddrPort.Compare)
	if len(msg.Dropped) > MaxPexSend {
		msg.Dropped = msg.Dropped[:MaxPexSend]
	}
	for _, ap := range msg.Dropped {
		delete(s.told, ap)
	}
	if len(msg.Added) == 0 && len(msg.Dropped) == 0 {
		return Pex{}, false
	}
	s.lastSent, s.sentAny = now, true
	return msg, true
}

// Received reports whether a PEX message arriving now respects the rate
// limit: it returns false when the previous accepted one came less than
// PexInterval/2 ago (slack for timer jitter on the sender's side), and the
// session should then ignore the message. Session goroutine only.
func (s *PexState) Received(now time.Time) bool {
	if s.recvAny && now.Sub(s.lastRecv) < PexInterval/2 {
		return false
	}
	s.lastRecv, s.recvAny = now, true
	return true
}
