package dht

import (
	"crypto/rand"
	"encoding/hex"
	"math/bits"
	"net/netip"

	"gotorrentserver/metainfo"
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
)

// parseCompactNodes decodes a nodes (size 26) or nodes6 (size 38) string,
// each entry a node id then a compact peer (IPv4-mapped ones refused); a
// length that is not whole entries yields nothing, like libtorrent.
func parseCompactNodes(b []byte, size int) []NodeInfo {
	if len(b)%size != 0 {
		return nil
	}
	var out []NodeInfo
	for i := 0; i+size <= len(b); i += size {
		if ap, ok := metainfo.ParseCompactPeer(b[i+20:i+size], metainfo.RefuseMapped); ok {
			out = append(out, NodeInfo{ID: NodeID(b[i : i+20]), Addr: ap})
		}
	}
	return out
}

func appendCompactNodes(dst []byte, nodes []NodeInfo) []byte {
	for _, n := range nodes {
		dst = append(dst, n.ID[:]...)
		dst = metainfo.AppendCompactPeer(dst, n.Addr)
	}
	return dst
}
