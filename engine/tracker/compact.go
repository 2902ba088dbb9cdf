package tracker

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

const (
	compactV4Len = 6  // BEP 23: 4-byte address, 2-byte big-endian port
	compactV6Len = 18 // BEP 7: 16-byte address, 2-byte port
)

// maxPeersPerReply bounds what one reply can add, whatever its size: no
// tracker sends more than a few hundred, and a session has no use for more.
const maxPeersPerReply = 4096

// parseCompactPeers decodes a BEP 23 (v6=false) or BEP 7 (v6=true) peer
// string. A length that is not a whole number of entries means the reply is
// corrupt, so it is an error rather than a silent truncation. Unusable
// entries (port 0, unspecified address) are skipped.
func parseCompactPeers(b []byte, v6 bool) ([]netip.AddrPort, error) {
	size := compactV4Len
	if v6 {
		size = compactV6Len
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: compact peer string of %d bytes is not a multiple of %d", ErrBadResponse, len(b), size)
	}
	n := min(len(b)/size, maxPeersPerReply)
	peers := make([]netip.AddrPort, 0, n)
	for i := 0; i < n; i++ {
		e := b[i*size : (i+1)*size]
		var addr netip.Addr
		if v6 {
			addr = netip.AddrFrom16([16]byte(e[:16]))
		} else {
			addr = netip.AddrFrom4([4]byte(e[:4]))
		}
		if ap, ok := usablePeer(addr, binary.BigEndian.Uint16(e[size-2:])); ok {
			peers = append(peers, ap)
		}
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
		a := p.Addr()
		switch {
		case !v6 && a.Is4():
			b := a.As4()
			dst = append(dst, b[:]...)
		case v6 && a.Is6():
			b := a.As16()
			dst = append(dst, b[:]...)
		default:
			continue
		}
		dst = binary.BigEndian.AppendUint16(dst, p.Port())
	}
	return dst
}
