package wire

import (
	"fmt"

	"gotorrentserver/metainfo"
)

const (
	// Protocol is the BEP 3 protocol string.
	Protocol = "BitTorrent protocol"
	// HandshakeLen is the size of a complete handshake:
	// 1 (pstrlen) + 19 (pstr) + 8 (reserved) + 20 (infohash) + 20 (peer id).
	HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20
)

// Reserved is the 8 reserved handshake bytes, where peers advertise
// extensions. Bits are numbered as in the BEPs: byte index, then mask. It is
// a plain value: readers are safe from any goroutine, setters need the
// caller to own the value.
type Reserved [8]byte

// Handshake is the first thing each side sends.
type Handshake struct {
	Reserved Reserved
	InfoHash metainfo.Hash
	PeerID   [20]byte
}

// Extension bits we read and set. Other bits are preserved untouched.
const (
	extendedByte, extendedMask = 5, 0x10 // BEP 10 extension protocol
	fastByte, fastMask         = 7, 0x04 // BEP 6 Fast extension
	dhtByte, dhtMask           = 7, 0x01 // BEP 5 DHT (port message)
)

// DefaultReserved advertises what this client speaks: the extension
// protocol and the Fast extension always, DHT only when the node runs one
// (advertising it otherwise invites port messages we would ignore).
func DefaultReserved(dht bool) Reserved {
	var r Reserved
	r.SetExtended(true)
	r.SetFast(true)
	r.SetDHT(dht)
	return r
}

// SupportsExtended reports the BEP 10 bit.
func (r Reserved) SupportsExtended() bool { return r[extendedByte]&extendedMask != 0 }

// SupportsFast reports the BEP 6 bit.
func (r Reserved) SupportsFast() bool { return r[fastByte]&fastMask != 0 }

// SupportsDHT reports the BEP 5 bit.
func (r Reserved) SupportsDHT() bool { return r[dhtByte]&dhtMask != 0 }

// SetExtended sets or clears the BEP 10 bit.
func (r *Reserved) SetExtended(on bool) { r.set(extendedByte, extendedMask, on) }

// SetFast sets or clears the BEP 6 bit.
func (r *Reserved) SetFast(on bool) { r.set(fastByte, fastMask, on) }

// SetDHT sets or clears the BEP 5 bit.
func (r *Reserved) SetDHT(on bool) { r.set(dhtByte, dhtMask, on) }

func (r *Reserved) set(i int, mask byte, on bool) {
	if on {
		r[i] |= mask
	} else {
		r[i] &^= mask
	}
}

// AppendHandshake appends the 68-byte handshake to dst. Safe from any
// goroutine that owns dst.
func AppendHandshake(dst []byte, h Handshake) []byte {
	dst = append(dst, byte(len(Protocol)))
	dst = append(dst, Protocol...)
	dst = append(dst, h.Reserved[:]...)
	dst = append(dst, h.InfoHash[:]...)
	return append(dst, h.PeerID[:]...)
}

// ParseHandshake parses exactly HandshakeLen bytes. The result holds no
// reference to b. Whether the infohash is one we serve is the caller's
// decision, not a parse error. Safe from any goroutine.
func ParseHandshake(b []byte) (Handshake, error) {
	var h Handshake
	if len(b) != HandshakeLen {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrBadHandshake, len(b), HandshakeLen)
	}
	if b[0] != byte(len(Protocol)) || string(b[1:1+len(Protocol)]) != Protocol {
		return h, ErrBadProtocol
	}
	p := 1 + len(Protocol)
	p += copy(h.Reserved[:], b[p:])
	p += copy(h.InfoHash[:], b[p:])
	copy(h.PeerID[:], b[p:])
	return h, nil
}
