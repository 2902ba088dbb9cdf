package picker

import "errors"

// Sentinel errors. Inputs that come from peers (have indexes, bitfields,
// block offsets) are checked and reported with these so the session can
// tell a misbehaving peer from its own bug with errors.Is.
var (
	// ErrBadPiece: a piece index outside [0, NumPieces).
	ErrBadPiece = errors.New("picker: piece index out of range")
	// ErrBadBlock: a block offset that is not a block boundary inside the
	// piece, or a length that is not that block's exact length.
	ErrBadBlock = errors.New("picker: invalid block offset or length")
	// ErrBadBitfield: a bitfield with bits set past the last piece.
	ErrBadBitfield = errors.New("picker: bitfield has bits past the last piece")
	// ErrBadSize: a piece size that is not positive or exceeds MaxPieceSize.
	ErrBadSize = errors.New("picker: invalid piece size")
	// ErrNotRequested: a reject or cancel for a block this peer does not
	// have outstanding (BEP 6 treats a reject of an unsent request as a
	// protocol error).
	ErrNotRequested = errors.New("picker: block not requested from this peer")
)
