package tracker

import (
	"fmt"
	"net/netip"

	"gotorrentserver/metainfo"
)

// maxPeersPerReply bounds what one reply can add, whatever its size: no
// tracker sends more than a few hundred, and a session has no use for more.
const maxPeersPerReply = 4096

// parseCompactPeers decodes a BEP 23 (v6=false) or BEP 7 (v6=true) peer
// string. A length that is not a whole number of entries means the reply is
// corrupt, so it is an error rather than a silent truncation. Unusable
// entries (port 0, unspecified address) are skipped; IPv4-mapped ones are
// unmapped, so the same peer reported in both lists deduplicates.
func parseCompactPeers(b []byte, v6 bool) ([]netip.AddrPort, error) {
	peers, err := metainfo.ParseCompactPeers(b, v6, maxPeersPerReply, metainfo.UnmapMapped)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return peers, nil
}

// usablePeer normalises addr (IPv4-mapped IPv6 becomes IPv4, so the same
// peer reported in both lists deduplicates) and rejects what cannot be
// dialled.
func usablePeer(addr netip.Addr, port uint16) (netip.AddrPort, bool) {
	addr = addr.Unmap()
	if port == 0 || !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() {
		return netip.AddrPort{}, false
	}
	// A zone would only come from a textual dict entry; it has no meaning
	// for a remote peer.
	addr = addr.WithZone("")
	return netip.AddrPortFrom(addr, port), true
}

// peerSet accumulates peers from several lists in first-seen order.
type peerSet struct {
	list []netip.AddrPort
	seen map[netip.AddrPort]struct{}
}

func (s *peerSet) add(ps ...netip.AddrPort) {
	if s.seen == nil {
		s.seen = make(map[netip.AddrPort]struct{}, len(ps))
	}
	for _, p := range ps {
		if len(s.list) >= maxPeersPerReply {
			return
		}
		if _, dup := s.seen[p]; dup {
			continue
		}
		s.seen[p] = struct{}{}
		s.list = append(s.list, p)
	}
}

// appendCompact encodes peers of one family in compact form; the other
// family is skipped. Used by tests and fuzz seeds to build replies.
func appendCompact(dst []byte, peers []netip.AddrPort, v6 bool) []byte {
	for _, p := range peers {
		if p.Addr().Is4() != v6 {
			dst = metainfo.AppendCompactPeer(dst, p)
		}
	}
	return dst
}
