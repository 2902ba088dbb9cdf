package wire

import "fmt"

// Validators check a decoded message against the torrent; Decode cannot,
// since it does not know the torrent. They allocate only when they fail and
// are safe from any goroutine.

// BitfieldLen is the size in bytes of a bitfield for numPieces pieces.
func BitfieldLen(numPieces int) int { return (numPieces + 7) / 8 }

// ValidateBitfield checks that b is exactly BitfieldLen(numPieces) bytes and
// that the spare bits after the last piece are zero, as BEP 3 requires; a
// peer that gets either wrong is broken and should be dropped.
func ValidateBitfield(b []byte, numPieces int) error {
	if numPieces < 0 || len(b) != BitfieldLen(numPieces) {
		return fmt.Errorf("%w: %d bytes for %d pieces, want %d",
			ErrBadBitfield, len(b), numPieces, BitfieldLen(numPieces))
	}
	if spare := numPieces % 8; spare != 0 && b[len(b)-1]&(0xff>>spare) != 0 {
		return fmt.Errorf("%w: spare bits set in last byte %#02x", ErrBadBitfield, b[len(b)-1])
	}
	return nil
}

// ValidateIndex checks a have, suggest or allowed-fast index.
func ValidateIndex(index uint32, numPieces int) error {
	if numPieces <= 0 || uint64(index) >= uint64(numPieces) {
		return fmt.Errorf("%w: %d of %d pieces", ErrBadIndex, index, numPieces)
	}
	return nil
}

// ValidateRequest checks a request, cancel or reject: index in range, length
// in (0, MaxBlockLen], and begin+length within the piece, whose size comes
// from pieceSize (typically MetaInfo.PieceSize, called only for a valid
// index). Blocks need not be aligned to DefaultBlockLen: other clients
// request odd sizes, and serving them costs nothing extra.
func ValidateRequest(index, begin, length uint32, pieceSize func(int) int64, numPieces int) error {
	if err := ValidateIndex(index, numPieces); err != nil {
		return err
	}
	if length == 0 || length > MaxBlockLen {
		return fmt.Errorf("%w: length %d, want 1..%d", ErrBadRequest, length, MaxBlockLen)
	}
	size := pieceSize(int(index))
	if end := int64(begin) + int64(length); end > size {
		return fmt.Errorf("%w: bytes %d..%d beyond piece %d of %d bytes",
			ErrBadRequest, begin, end, index, size)
	}
	return nil
}
