package wire

import (
	"encoding/binary"
	"fmt"
)

// Encoders append one frame to dst and return the extended slice, so a
// connection can build its output in one reused buffer without allocating.
// They are safe from any goroutine that owns dst. Sizes come from our own
// state, never from a peer, so encoders do not validate ranges: the session
// checks requests with ValidateRequest before sending pieces.

func appendHeader(dst []byte, t Type, payloadLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+payloadLen))
	return append(dst, byte(t))
}

// AppendKeepAlive appends a keep-alive (a zero length prefix).
func AppendKeepAlive(dst []byte) []byte { return append(dst, 0, 0, 0, 0) }

// AppendSimple appends a message without payload: Choke, Unchoke,
// Interested, NotInterested, HaveAll or HaveNone. Any other type is a bug in
// the caller and panics.
func AppendSimple(dst []byte, t Type) []byte {
	if payloadSize(t) != 0 {
		panic(fmt.Sprintf("wire: AppendSimple(%v): type has a payload", t))
	}
	return appendHeader(dst, t, 0)
}

func appendIndex(dst []byte, t Type, index uint32) []byte {
	dst = appendHeader(dst, t, 4)
	return binary.BigEndian.AppendUint32(dst, index)
}

// AppendHave appends a have message.
func AppendHave(dst []byte, index uint32) []byte { return appendIndex(dst, Have, index) }

// AppendSuggest appends a BEP 6 suggest piece message.
func AppendSuggest(dst []byte, index uint32) []byte { return appendIndex(dst, Suggest, index) }

// AppendAllowedFast appends a BEP 6 allowed fast message.
func AppendAllowedFast(dst []byte, index uint32) []byte {
	return appendIndex(dst, AllowedFast, index)
}

func appendBlockRef(dst []byte, t Type, index, begin, length uint32) []byte {
	dst = appendHeader(dst, t, 12)
	dst = binary.BigEndian.AppendUint32(dst, index)
	dst = binary.BigEndian.AppendUint32(dst, begin)
	return binary.BigEndian.AppendUint32(dst, length)
}

// AppendRequest appends a request for length bytes at begin in piece index.
func AppendRequest(dst []byte, index, begin, length uint32) []byte {
	return appendBlockRef(dst, Request, index, begin, length)
}

// AppendCancel appends a cancel for an earlier request.
func AppendCancel(dst []byte, index, begin, length uint32) []byte {
	return appendBlockRef(dst, Cancel, index, begin, length)
}

// AppendReject appends a BEP 6 reject request message.
func AppendReject(dst []byte, index, begin, length uint32) []byte {
	return appendBlockRef(dst, Reject, index, begin, length)
}

// AppendPieceHeader appends the 13-byte header of a piece message carrying
// blockLen bytes. The caller then writes the block itself (a writev of
// header and cached block), so block data is never copied into the buffer.
func AppendPieceHeader(dst []byte, index, begin, blockLen uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 9+blockLen)
	dst = append(dst, byte(Piece))
	dst = binary.BigEndian.AppendUint32(dst, index)
	return binary.BigEndian.AppendUint32(dst, begin)
}

// AppendPiece appends a whole piece message, block included. Prefer
// AppendPieceHeader on the upload path; this copies the block.
func AppendPiece(dst []byte, index, begin uint32, block []byte) []byte {
	dst = AppendPieceHeader(dst, index, begin, uint32(len(block)))
	return append(dst, block...)
}

// AppendBitfield appends a bitfield message carrying bf as is.
func AppendBitfield(dst []byte, bf []byte) []byte {
	dst = appendHeader(dst, Bitfield, len(bf))
	return append(dst, bf...)
}

// AppendPort appends a BEP 5 port message announcing our DHT port.
func AppendPort(dst []byte, port uint16) []byte {
	dst = appendHeader(dst, Port, 2)
	return binary.BigEndian.AppendUint16(dst, port)
}

// AppendExtended appends a BEP 10 extended message: extID is the id the
// peer assigned in its handshake's m dict (0 for the handshake itself).
func AppendExtended(dst []byte, extID uint8, payload []byte) []byte {
	dst = appendHeader(dst, Extended, 1+len(payload))
	dst = append(dst, extID)
	return append(dst, payload...)
}

// AppendMessage appends m in its wire form, reading the fields its Type
// uses (see Message). A Type that is not one of the constants is a bug in
// the caller and panics; Decode never produces one without an error.
func AppendMessage(dst []byte, m *Message) []byte {
	switch m.Type {
	case KeepAlive:
		return AppendKeepAlive(dst)
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return AppendSimple(dst, m.Type)
	case Have, Suggest, AllowedFast:
		return appendIndex(dst, m.Type, m.Index)
	case Request, Cancel, Reject:
		return appendBlockRef(dst, m.Type, m.Index, m.Begin, m.Length)
	case Piece:
		return AppendPiece(dst, m.Index, m.Begin, m.Block)
	case Bitfield:
		return AppendBitfield(dst, m.Bitfield)
	case Port:
		return AppendPort(dst, m.Port)
	case Extended:
		return AppendExtended(dst, m.ExtID, m.ExtPayload)
	}
	panic(fmt.Sprintf("wire: AppendMessage: %v", m.Type))
}
