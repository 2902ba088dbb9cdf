package utp

import (
	"encoding/binary"
	"errors"
)

// Packet types of BEP 29.
const (
	stData  = 0
	stFin   = 1
	stState = 2
	stReset = 3
	stSyn   = 4
)

const (
	version   = 1
	headerLen = 20
	extSACK   = 1
	// maxSACK bounds the selective ACK bitmask we send (256 packets past
	// the gap); a longer one adds little, as the sender resends on the
	// first three packets seen past a hole anyway.
	maxSACK = 32
)

var (
	errShort     = errors.New("utp: packet shorter than its header")
	errVersion   = errors.New("utp: not a version 1 packet")
	errType      = errors.New("utp: unknown packet type")
	errExtension = errors.New("utp: extension runs past the packet")
)

// header is a parsed packet. sack and payload alias the datagram: valid
// only while it is.
type header struct {
	typ     uint8
	connID  uint16
	ts      uint32 // sender's clock, microseconds
	tsDiff  uint32 // sender's clock minus our last timestamp it saw
	wnd     uint32 // bytes the sender can still take in
	seq     uint16
	ack     uint16
	sack    []byte // the selective ACK bitmask, nil without one
	payload []byte
}

// parse reads a datagram. Hostile input gives an error, never a panic:
// every extension's length is checked against what is left.
func parse(b []byte) (h header, err error) {
	if len(b) < headerLen {
		return h, errShort
	}
	if b[0]&0x0f != version {
		return h, errVersion
	}
	h.typ = b[0] >> 4
	if h.typ > stSyn {
		return h, errType
	}
	h.connID = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.tsDiff = binary.BigEndian.Uint32(b[8:])
	h.wnd = binary.BigEndian.Uint32(b[12:])
	h.seq = binary.BigEndian.Uint16(b[16:])
	h.ack = binary.BigEndian.Uint16(b[18:])
	next, rest := b[1], b[headerLen:]
	// Each extension is at least two bytes, so the chain ends within
	// len(b)/2 steps whatever it says.
	for next != 0 {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return h, errExtension
		}
		typ, n := next, int(rest[1])
		next = rest[0]
		if typ == extSACK && h.sack == nil && n > 0 {
			h.sack = rest[2 : 2+n : 2+n]
		}
		rest = rest[2+n:]
	}
	h.payload = rest
	return h, nil
}

// putHeader writes h's fixed fields (and the SACK extension's chain byte,
// if sack is set) into b[:headerLen]; the caller appends the rest.
func putHeader(b []byte, typ uint8, hasSACK bool, connID uint16, ts, tsDiff, wnd uint32, seq, ack uint16) {
	b[0] = typ<<4 | version
	b[1] = 0
	if hasSACK {
		b[1] = extSACK
	}
	binary.BigEndian.PutUint16(b[2:], connID)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], tsDiff)
	binary.BigEndian.PutUint32(b[12:], wnd)
	binary.BigEndian.PutUint16(b[16:], seq)
	binary.BigEndian.PutUint16(b[18:], ack)
}

// seqLess reports whether a comes before b in 16-bit sequence space.
func seqLess(a, b uint16) bool { return int16(a-b) < 0 }
