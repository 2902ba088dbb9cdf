package metainfo

import (
	"errors"
	"reflect"
	"testing"
)

// Seed corpora live in testdata/fuzz/<target>/ and run with plain `go test`.

// FuzzBencode: the guard never panics, Validate and Decode agree, and what
// decodes re-encodes to something that decodes to the same value.
func FuzzBencode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		verr := Validate(b, DefaultLimits)
		v, err := Decode(b)
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate %v but Decode %v", verr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBencode) {
				t.Fatalf("error %v does not wrap ErrBencode", err)
			}
			return
		}
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", enc, err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("round trip changed %#v to %#v", v, back)
		}
	})
}

// FuzzParse: torrent parsing never panics, and anything accepted satisfies
// the invariants storage relies on.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrBencode) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrV2Only) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if mi.PieceLength <= 0 || mi.TotalLength <= 0 || len(mi.Files) == 0 {
			t.Fatalf("accepted bad geometry %+v", mi)
		}
		var sum int64
		for i, fl := range mi.Files {
			if fl.Offset != sum || fl.Length < 0 {
				t.Fatalf("file %d offset %d length %d", i, fl.Offset, fl.Length)
			}
			for _, c := range fl.Path {
				if checkComponent(c) != nil {
					t.Fatalf("accepted unsafe path component %q", c)
				}
			}
			sum += fl.Length
		}
		if sum != mi.TotalLength || int64(len(mi.Pieces)) != (sum+mi.PieceLength-1)/mi.PieceLength {
			t.Fatalf("total %d, %d pieces", sum, len(mi.Pieces))
		}
		var covered int64
		for _, s := range mi.PieceSpans(len(mi.Pieces) - 1) {
			covered += s.Length
		}
		if covered != mi.PieceSize(len(mi.Pieces)-1) {
			t.Fatalf("last piece spans cover %d of %d", covered, mi.PieceSize(len(mi.Pieces)-1))
		}
	})
}

// FuzzParseMagnet: never panics, and String() round-trips what parsed.
func FuzzParseMagnet(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMagnet(s)
		if err != nil {
			if !errors.Is(err, ErrMagnet) && !errors.Is(err, ErrV2Only) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		back, err := ParseMagnet(m.String())
		if err != nil {
			t.Fatalf("re-encoded %q: %v", m.String(), err)
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("round trip %+v -> %+v", m, back)
		}
	})
}
