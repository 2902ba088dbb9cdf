package wire

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts is canonical:
// re-encoding gives back the very same frame, which decodes to the same
// Message. CheckFrame must agree with Decode on the frame size.
func FuzzDecode(f *testing.F) {
	for _, m := range allMessages() {
		f.Add(AppendMessage(nil, &m))
	}
	f.Add([]byte{0x80, 0, 0, 0, 7})
	f.Fuzz(func(t *testing.T, in []byte) {
		var m Message
		err := Decode(in, &m)
		if n, cerr := CheckFrame(in, len(in)); err == nil && (cerr != nil || n != len(in)) {
			t.Fatalf("Decode accepted %d bytes but CheckFrame says %d, %v", len(in), n, cerr)
		}
		if err != nil {
			if errors.Is(err, ErrUnknownMessage) && (len(in) < 5 || m.Type != Type(in[4])) {
				t.Fatalf("unknown message without its raw id: %+v", m)
			}
			return
		}
		out := AppendMessage(nil, &m)
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded % x as % x", in, out)
		}
		var again Message
		if err := Decode(out, &again); err != nil || !sameMessage(&m, &again) {
			t.Fatalf("second decode %+v, %v; first %+v", again, err, m)
		}
	})
}

// FuzzHandshake: ParseHandshake never panics and accepts only canonical
// handshakes, which re-encode byte for byte.
func FuzzHandshake(f *testing.F) {
	f.Add(AppendHandshake(nil, Handshake{Reserved: DefaultReserved(true)}))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHandshake(in)
		if err != nil {
			return
		}
		if out := AppendHandshake(nil, h); !bytes.Equal(out, in) {
			t.Fatalf("re-encoded % x as % x", in, out)
		}
	})
}

// FuzzExtHandshake: ParseExtHandshake never panics; what it returns
// always encodes, and parsing that encoding gives the same value (the
// parser's sanitising is idempotent).
func FuzzExtHandshake(f *testing.F) {
	f.Add([]byte("d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e1:v5:hello6:yourip4:\x7f\x00\x00\x01e"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseExtHandshake(in)
		if err != nil {
			if !errors.Is(err, ErrBadExtHandshake) {
				t.Fatalf("error %v does not wrap ErrBadExtHandshake", err)
			}
			return
		}
		out, err := EncodeExtHandshake(h)
		if err != nil {
			t.Fatalf("cannot encode parsed %+v: %v", h, err)
		}
		again, err := ParseExtHandshake(out)
		if err != nil || !sameExt(h, again) {
			t.Fatalf("re-parse of %q: %+v, %v; first %+v", out, again, err, h)
		}
	})
}
