package wire

import "errors"

// Sentinel errors. Every error this package returns is, or wraps, one of
// these, so callers choose a reaction with errors.Is: ErrUnknownMessage is
// skipped, everything else means the peer is broken or hostile.
var (
	// ErrBadHandshake: the handshake is not exactly HandshakeLen bytes.
	ErrBadHandshake = errors.New("wire: bad handshake")
	// ErrBadProtocol: the handshake does not name "BitTorrent protocol".
	ErrBadProtocol = errors.New("wire: not the BitTorrent protocol")
	// ErrTruncated: fewer bytes than the length prefix promises.
	ErrTruncated = errors.New("wire: truncated frame")
	// ErrFrameTooLarge: the length prefix exceeds the caller's maximum.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadLength: a payload whose size is wrong for its message type, or
	// a frame with bytes beyond its length prefix.
	ErrBadLength = errors.New("wire: bad payload length")
	// ErrUnknownMessage: a well-framed message with an id we do not speak.
	// Decode returns it unwrapped (no allocation); the frame may be skipped.
	ErrUnknownMessage = errors.New("wire: unknown message id")
	// ErrBadBitfield: wrong length for the torrent, or spare bits set.
	ErrBadBitfield = errors.New("wire: bad bitfield")
	// ErrBadIndex: a piece index outside the torrent.
	ErrBadIndex = errors.New("wire: piece index out of range")
	// ErrBadRequest: a request, cancel or reject outside the piece or
	// with a block length we refuse.
	ErrBadRequest = errors.New("wire: bad request")
	// ErrBadExtHandshake: a BEP 10 handshake that is not a bencoded dict
	// within limits, or one we were asked to encode with invalid fields.
	ErrBadExtHandshake = errors.New("wire: bad extension handshake")
)
