package metainfo

import (
	"encoding/hex"
	"fmt"
)

// Hash is a 20-byte SHA-1: an infohash or a piece hash.
type Hash [20]byte

// String is the 40-character lower-case hex form used everywhere users see it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash accepts exactly 40 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 40 {
		return h, fmt.Errorf("%w: infohash must be 40 hex digits, got %d characters", ErrInvalid, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: infohash is not hex", ErrInvalid)
	}
	return h, nil
}

// File is one file of a torrent, in metainfo order.
type File struct {
	Path   []string // components below the torrent's root folder; never empty
	Length int64
	Offset int64 // byte offset of the file's first byte in the torrent's data
	Pad    bool  // BEP 47 padding file: all zeros, never written to disk
}

// MetaInfo is what a .torrent file tells us. Values are immutable once
// parsed, so they may be shared between goroutines without locks.
type MetaInfo struct {
	InfoHash     Hash
	InfoBytes    []byte // the info dict exactly as encoded in the source
	Name         string
	PieceLength  int64
	Pieces       []Hash
	Files        []File // a single-file torrent has one File whose Path is [Name]
	SingleFile   bool
	TotalLength  int64
	Private      bool
	Trackers     [][]string // tiers (BEP 12); a lone announce is one tier of one
	WebSeeds     []string   // BEP 19 url-list
	Comment      string
	CreatedBy    string
	CreationDate int64 // unix seconds, 0 when absent
	Hybrid       bool  // the file also carried a v2 part, which we ignore
}

// NumPieces is the number of pieces.
func (m *MetaInfo) NumPieces() int { return len(m.Pieces) }

// PieceSize is the length of piece i; only the last piece may be short.
func (m *MetaInfo) PieceSize(i int) int64 {
	if i == len(m.Pieces)-1 {
		return m.TotalLength - int64(i)*m.PieceLength
	}
	return m.PieceLength
}

// Span is the part of one file that a piece covers.
type Span struct {
	File   int   // index into MetaInfo.Files
	Offset int64 // offset within that file
	Length int64
	Pad    bool // the file is a BEP 47 pad file: bytes are zeros and never stored
}

// PieceSpans lists, in order, the file ranges that piece i covers. Zero-length
// files are skipped since they cover no bytes.
func (m *MetaInfo) PieceSpans(i int) []Span {
	return m.Spans(int64(i)*m.PieceLength, m.PieceSize(i))
}

// Spans lists the file ranges covering length bytes from torrent offset off.
func (m *MetaInfo) Spans(off, length int64) []Span {
	if length <= 0 || off < 0 || off >= m.TotalLength {
		return nil
	}
	// Binary search for the first file whose end lies past off.
	lo, hi := 0, len(m.Files)
	for lo < hi {
		mid := (lo + hi) / 2
		if f := m.Files[mid]; f.Offset+f.Length <= off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	var spans []Span
	for fi := lo; fi < len(m.Files) && length > 0; fi++ {
		f := m.Files[fi]
		if f.Length == 0 {
			continue
		}
		in := off - f.Offset
		n := min(f.Length-in, length)
		spans = append(spans, Span{File: fi, Offset: in, Length: n, Pad: f.Pad})
		off += n
		length -= n
	}
	return spans
}

// FilePieces returns the range [first, last] of pieces that touch file fi.
// A zero-length file touches none and returns (0, -1).
func (m *MetaInfo) FilePieces(fi int) (first, last int) {
	f := m.Files[fi]
	if f.Length == 0 {
		return 0, -1
	}
	return int(f.Offset / m.PieceLength), int((f.Offset + f.Length - 1) / m.PieceLength)
}
