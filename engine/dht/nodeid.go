package dht

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"net/netip"
)

// NodeID is a 160-bit DHT node id, in the same space as infohashes.
type NodeID [20]byte

// String is the 40-character hex form. Any goroutine.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// RandomNodeID draws a node id from crypto/rand. Any goroutine.
func RandomNodeID() NodeID {
	var id NodeID
	rand.Read(id[:])
	return id
}

// commonPrefixLen is the number of leading bits a and b share (160 when
// equal): the index of the bucket b falls in, seen from a.
func commonPrefixLen(a, b NodeID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// closer reports whether a is strictly closer to target than b by XOR.
func closer(target, a, b NodeID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// cmpDistance orders a and b by XOR distance to target.
func cmpDistance(target, a, b NodeID) int {
	switch {
	case closer(target, a, b):
		return -1
	case closer(target, b, a):
		return 1
	}
	return 0
}

// randomIDWithPrefix returns a random id sharing exactly the first n bits
// with base when flip is set (bit n differs), or at least n bits when not.
func randomIDWithPrefix(base NodeID, n int, flip bool) NodeID {
	id := RandomNodeID()
	for i := 0; i < n && i < 160; i++ {
		mask := byte(0x80) >> (i % 8)
		id[i/8] = id[i/8]&^mask | base[i/8]&mask
	}
	if flip && n < 160 {
		mask := byte(0x80) >> (n % 8)
		id[n/8] = id[n/8]&^mask | ^base[n/8]&mask
	}
	return id
}

// NodeInfo is a contact: a node id and its UDP address.
type NodeInfo struct {
	ID   NodeID
	Addr netip.AddrPort
}

const (
	compactNodeV4 = 26 // id + 4-byte address + port
	compactNodeV6 = 38 // id + 16-byte address + port
	compactPeerV4 = 6
	compactPeerV6 = 18
)

// appendCompactAddr appends a BEP 5 compact peer: address then big-endian
// port. The caller picks the family.
func appendCompactAddr(dst []byte, ap netip.AddrPort) []byte {
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

// parseCompactAddr decodes a 6- or 18-byte compact peer, refusing what
// cannot be contacted (port 0, unspecified, multicast, IPv4-mapped in the
// IPv6 form).
func parseCompactAddr(b []byte) (netip.AddrPort, bool) {
	var a netip.Addr
	switch len(b) {
	case compactPeerV4:
		a = netip.AddrFrom4([4]byte(b[:4]))
	case compactPeerV6:
		a = netip.AddrFrom16([16]byte(b[:16]))
	default:
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(b[len(b)-2:])
	if port == 0 || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}

// parseCompactNodes decodes a nodes (size 26) or nodes6 (size 38) string;
// a length that is not whole entries yields nothing, like libtorrent.
func parseCompactNodes(b []byte, size int) []NodeInfo {
	if len(b)%size != 0 {
		return nil
	}
	var out []NodeInfo
	for i := 0; i+size <= len(b); i += size {
		if ap, ok := parseCompactAddr(b[i+20 : i+size]); ok {
			out = append(out, NodeInfo{ID: NodeID(b[i : i+20]), Addr: ap})
		}
	}
	return out
}

func appendCompactNodes(dst []byte, nodes []NodeInfo) []byte {
	for _, n := range nodes {
		dst = append(dst, n.ID[:]...)
		dst = appendCompactAddr(dst, n.Addr)
	}
	return dst
}
