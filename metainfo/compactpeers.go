package metainfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The compact peer form of BEP 23 (IPv4) and BEP 7 (IPv6): the address,
// then the port big-endian. Trackers, PEX (BEP 11) and the DHT (BEP 5)
// all use it, so one codec serves them and they cannot drift apart.
const (
	CompactPeerV4Len = 6
	CompactPeerV6Len = 18
)

// ErrCompactPeers: a compact peer string that is not a whole number of
// entries, so it is corrupt rather than merely short.
var ErrCompactPeers = errors.New("metainfo: bad compact peer string")

// Mapped says what becomes of an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) in an 18-byte entry.
type Mapped uint8

const (
	// RefuseMapped skips the entry, as the DHT and PEX always have: BEP 7
	// puts IPv4 peers in the 6-byte form, so a mapped one is a sender's
	// mistake or a trick to slip an address past an IPv4 filter.
	RefuseMapped Mapped = iota
	// UnmapMapped keeps it as the IPv4 address, as trackers' replies
	// always have, so a peer listed in both peers and peers6 deduplicates.
	UnmapMapped
)

// AppendCompactPeer appends ap in compact form: 6 bytes when its address
// is IPv4 (or IPv4-mapped), 18 otherwise. The caller picks the list the
// family belongs in. Safe from any goroutine.
func AppendCompactPeer(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		dst = append(dst, b[:]...)
	} else {
		b := a.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

// ParseCompactPeer decodes one 6- or 18-byte entry, refusing what cannot
// be dialled: any other length, port 0, an unspecified or multicast
// address, and IPv4-mapped ones as m says. The result has no zone. Safe
// from any goroutine.
func ParseCompactPeer(b []byte, m Mapped) (netip.AddrPort, bool) {
	var a netip.Addr
	switch len(b) {
	case CompactPeerV4Len:
		a = netip.AddrFrom4([4]byte(b[:4]))
	case CompactPeerV6Len:
		a = netip.AddrFrom16([16]byte(b[:16]))
		if a.Is4In6() {
			if m != UnmapMapped {
				return netip.AddrPort{}, false
			}
			a = a.Unmap()
		}
	default:
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(b[len(b)-2:])
	if port == 0 || a.IsUnspecified() || a.IsMulticast() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}

// ParseCompactPeers decodes a string of 6-byte (v6 false) or 18-byte
// entries. A length that is not whole entries fails with ErrCompactPeers;
// only the first max entries are read (max <= 0: all), and unusable ones
// among them are skipped (ParseCompactPeer). The result does not alias b.
// Safe from any goroutine.
func ParseCompactPeers(b []byte, v6 bool, max int, m Mapped) ([]netip.AddrPort, error) {
	size := CompactPeerV4Len
	if v6 {
		size = CompactPeerV6Len
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes are not a multiple of %d", ErrCompactPeers, len(b), size)
	}
	n := len(b) / size
	if max > 0 {
		n = min(n, max)
	}
	peers := make([]netip.AddrPort, 0, n)
	for i := range n {
		if ap, ok := ParseCompactPeer(b[i*size:(i+1)*size], m); ok {
			peers = append(peers, ap)
		}
	}
	return peers, nil
}
