package wire

import (
	"errors"
	"math"
	"testing"
)

func TestValidateBitfield(t *testing.T) {
	cases := []struct {
		name   string
		bf     []byte
		pieces int
		ok     bool
	}{
		{"exact multiple of 8", []byte{0xff, 0xff}, 16, true},
		{"last piece set", []byte{0xff, 0xe0}, 11, true},
		{"spare bit set", []byte{0xff, 0xf0}, 11, false},
		{"lowest spare bit set", []byte{0x01}, 7, false},
		{"one piece, set", []byte{0x80}, 1, true},
		{"one piece, spare", []byte{0x40}, 1, false},
		{"too short", []byte{0xff}, 9, false},
		{"too long", []byte{0xff, 0x00}, 8, false},
		{"empty for empty torrent", nil, 0, true},
		{"empty for one piece", nil, 1, false},
		{"negative piece count", nil, -1, false},
	}
	for _, c := range cases {
		err := ValidateBitfield(c.bf, c.pieces)
		if c.ok && err != nil {
			t.Errorf("%s: unexpected %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrBadBitfield) {
			t.Errorf("%s: got %v, want ErrBadBitfield", c.name, err)
		}
	}
}

func TestValidateIndex(t *testing.T) {
	if err := ValidateIndex(9, 10); err != nil {
		t.Errorf("last piece: %v", err)
	}
	for _, idx := range []uint32{10, math.MaxUint32} {
		if err := ValidateIndex(idx, 10); !errors.Is(err, ErrBadIndex) {
			t.Errorf("have %d of 10: got %v, want ErrBadIndex", idx, err)
		}
	}
	if err := ValidateIndex(0, 0); !errors.Is(err, ErrBadIndex) {
		t.Errorf("have 0 before metadata: got %v", err)
	}
}

func TestValidateRequest(t *testing.T) {
	// 3 pieces of 64 KiB, the last one 1000 bytes.
	const pieceLen = 64 << 10
	size := func(i int) int64 {
		if i == 2 {
			return 1000
		}
		return pieceLen
	}
	cases := []struct {
		name                 string
		index, begin, length uint32
		want                 error
	}{
		{"first block", 0, 0, DefaultBlockLen, nil},
		{"last block of full piece", 1, pieceLen - DefaultBlockLen, DefaultBlockLen, nil},
		{"unaligned odd size", 1, 5, 777, nil},
		{"whole short last piece", 2, 0, 1000, nil},
		{"128 KiB past a 64 KiB piece", 0, 0, MaxBlockLen, ErrBadRequest},
		{"index out of range", 3, 0, DefaultBlockLen, ErrBadIndex},
		{"zero length", 0, 0, 0, ErrBadRequest},
		{"above 128 KiB", 0, 0, MaxBlockLen + 1, ErrBadRequest},
		{"past end of piece", 0, pieceLen - 100, DefaultBlockLen, ErrBadRequest},
		{"past short last piece", 2, 0, 1001, ErrBadRequest},
		{"begin+length overflows uint32", 0, math.MaxUint32, DefaultBlockLen, ErrBadRequest},
	}
	for _, c := range cases {
		err := ValidateRequest(c.index, c.begin, c.length, size, 3)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: unexpected %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	big := func(int) int64 { return 1 << 20 }
	if err := ValidateRequest(0, 0, MaxBlockLen, big, 1); err != nil {
		t.Errorf("128 KiB request within a 1 MiB piece: %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = ValidateRequest(1, 0, DefaultBlockLen, size, 3) })
	if allocs != 0 {
		t.Errorf("ValidateRequest allocates %v times for a valid request", allocs)
	}
}
