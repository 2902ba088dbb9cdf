package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Type is a message id as sent on the wire, plus the KeepAlive pseudo type.
type Type int16

// Message ids from BEP 3, BEP 5 (port), BEP 6 and BEP 10.
const (
	KeepAlive     Type = -1 // zero-length frame; has no id on the wire
	Choke         Type = 0
	Unchoke       Type = 1
	Interested    Type = 2
	NotInterested Type = 3
	Have          Type = 4
	Bitfield      Type = 5
	Request       Type = 6
	Piece         Type = 7
	Cancel        Type = 8
	Port          Type = 9
	Suggest       Type = 13
	HaveAll       Type = 14
	HaveNone      Type = 15
	Reject        Type = 16
	AllowedFast   Type = 17
	Extended      Type = 20
)

// String names the type for logs; unknown ids print as "unknown(N)". Safe
// from any goroutine.
func (t Type) String() string {
	switch t {
	case KeepAlive:
		return "keep-alive"
	case Choke:
		return "choke"
	case Unchoke:
		return "unchoke"
	case Interested:
		return "interested"
	case NotInterested:
		return "not-interested"
	case Have:
		return "have"
	case Bitfield:
		return "bitfield"
	case Request:
		return "request"
	case Piece:
		return "piece"
	case Cancel:
		return "cancel"
	case Port:
		return "port"
	case Suggest:
		return "suggest"
	case HaveAll:
		return "have-all"
	case HaveNone:
		return "have-none"
	case Reject:
		return "reject"
	case AllowedFast:
		return "allowed-fast"
	case Extended:
		return "extended"
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// payloadSize is the exact payload length (after the id) of fixed-size
// types, or -1 for variable-size types and -2 for ids we do not know.
func payloadSize(t Type) int {
	switch t {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return 0
	case Have, Suggest, AllowedFast:
		return 4
	case Request, Cancel, Reject:
		return 12
	case Port:
		return 2
	case Bitfield, Piece, Extended:
		return -1
	}
	return -2
}

// Message is one decoded frame. It is a plain value so a connection can keep
// one and decode into it again and again; which fields matter depends on
// Type, and Decode zeroes the rest:
//
//	Have, Suggest, AllowedFast   Index
//	Request, Cancel, Reject      Index, Begin, Length
//	Piece                        Index, Begin, Block
//	Bitfield                     Bitfield
//	Port                         Port
//	Extended                     ExtID, ExtPayload
//
// A Message must be used by one goroutine at a time.
type Message struct {
	Type       Type
	Index      uint32
	Begin      uint32
	Length     uint32
	Port       uint16
	ExtID      uint8
	Bitfield   []byte
	Block      []byte
	ExtPayload []byte
}

const (
	// DefaultBlockLen is the block size we request: what every client uses.
	DefaultBlockLen = 16 << 10
	// MaxBlockLen is the largest request we serve. Some clients ask for
	// more than 16 KiB; libtorrent and Transmission refuse above 128 KiB,
	// and so do we.
	MaxBlockLen = 128 << 10
	// MaxExtendedLen bounds an extended message payload (Message.ExtPayload).
	// The largest legitimate ones are BEP 9 metadata pieces: 16 KiB of data
	// plus a dict of well under 100 bytes. Handshakes and PEX messages stay
	// below a few KiB. 64 KiB leaves 4x headroom while capping what a
	// hostile peer can make us buffer per connection: thousands of seedbox
	// connections times 64 KiB stays affordable, times 1 MiB does not.
	MaxExtendedLen = 64 << 10

	frameHeaderLen = 4 + 1     // length prefix + id
	pieceHeaderLen = 4 + 1 + 8 // + index + begin
)

// MaxFrame is the largest frame (prefix included) a connection should accept
// for a torrent whose pieces we request in blocks of pieceBlock bytes and
// that has numPieces pieces: the largest of a piece message carrying one
// such block, a full bitfield, and an extended message of MaxExtendedLen.
// Anything bigger is either a bitfield of the wrong size or a peer trying to
// make us buffer without bound. pieceBlock <= 0 means DefaultBlockLen and is
// capped at MaxBlockLen. numPieces <= 0 means not known yet (a magnet link
// before its metadata): the bound then admits bitfields up to the extended
// limit (about 524 000 pieces), which covers real torrents. Safe from any goroutine.
func MaxFrame(pieceBlock int, numPieces int) int {
	if pieceBlock <= 0 {
		pieceBlock = DefaultBlockLen
	}
	pieceBlock = min(pieceBlock, MaxBlockLen)
	n := max(pieceHeaderLen+pieceBlock, frameHeaderLen+1+MaxExtendedLen)
	if numPieces > 0 {
		n = max(n, frameHeaderLen+(numPieces+7)/8)
	}
	return n
}

// FrameLen reports the total size, length prefix included, of the frame
// that b starts with; ok is false while fewer than 4 bytes are available.
// Sizes that do not fit an int32 are reported as math.MaxInt32, so the
// arithmetic cannot overflow on 32-bit platforms; no limit comes near that.
// Safe from any goroutine.
func FrameLen(b []byte) (n int, ok bool) {
	if len(b) < 4 {
		return 0, false
	}
	total := uint64(binary.BigEndian.Uint32(b)) + 4
	if total > math.MaxInt32 {
		return math.MaxInt32, true
	}
	return int(total), true
}

// CheckFrame is FrameLen with the limit applied: it returns the frame size
// when at most max, ErrFrameTooLarge when above, and ErrTruncated while
// fewer than 4 bytes are available (wait for more; not a protocol error).
// It reads only the prefix and never allocates on success. Safe from any
// goroutine.
func CheckFrame(b []byte, max int) (int, error) {
	n, ok := FrameLen(b)
	if !ok {
		return 0, ErrTruncated
	}
	if n > max {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	return n, nil
}

// Decode decodes exactly one complete frame into m. It keeps no reference to
// frame: variable data is copied into m's existing slices, reusing their
// capacity, so decoding into a long-lived Message allocates nothing once the
// slices have grown. To hand a Block or Bitfield off to another owner,
// replace that field with a fresh slice before the next Decode.
//
// Sizes are checked strictly per type. An id we do not know yields
// ErrUnknownMessage, unwrapped, with m.Type set to the raw id and the other
// fields zeroed; the caller may skip the frame. Other errors mean the peer
// broke the protocol, and leave m's fields unspecified. Decode checks no
// frame limit: call CheckFrame before reading the frame in. The caller must
// own m; frame may be shared read-only.
func Decode(frame []byte, m *Message) error {
	if len(frame) < 4 {
		return fmt.Errorf("%w: %d bytes, need a 4-byte length prefix", ErrTruncated, len(frame))
	}
	want := uint64(binary.BigEndian.Uint32(frame))
	switch got := uint64(len(frame) - 4); {
	case got < want:
		return fmt.Errorf("%w: %d of %d payload bytes", ErrTruncated, got, want)
	case got > want:
		return fmt.Errorf("%w: %d bytes after a frame of %d", ErrBadLength, got-want, want)
	}
	m.reset()
	if want == 0 {
		m.Type = KeepAlive
		return nil
	}
	t, p := Type(frame[4]), frame[5:]
	m.Type = t
	switch size := payloadSize(t); {
	case size == -2:
		return ErrUnknownMessage
	case size >= 0 && len(p) != size:
		return fmt.Errorf("%w: %v payload is %d bytes, want %d", ErrBadLength, t, len(p), size)
	}
	switch t {
	case Have, Suggest, AllowedFast:
		m.Index = binary.BigEndian.Uint32(p)
	case Request, Cancel, Reject:
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Length = binary.BigEndian.Uint32(p[8:])
	case Port:
		m.Port = binary.BigEndian.Uint16(p)
	case Bitfield:
		m.Bitfield = append(m.Bitfield, p...)
	case Piece:
		if len(p) < 8 {
			return fmt.Errorf("%w: piece payload is %d bytes, want at least 8", ErrBadLength, len(p))
		}
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Block = append(m.Block, p[8:]...)
	case Extended:
		if len(p) < 1 {
			return fmt.Errorf("%w: extended message without an extension id", ErrBadLength)
		}
		m.ExtID = p[0]
		m.ExtPayload = append(m.ExtPayload, p[1:]...)
	}
	return nil
}

// reset zeroes m but keeps the capacity of its slices for reuse.
func (m *Message) reset() {
	*m = Message{
		Bitfield:   m.Bitfield[:0],
		Block:      m.Block[:0],
		ExtPayload: m.ExtPayload[:0],
	}
}
