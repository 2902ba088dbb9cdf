package utp

import (
	"bytes"
	"testing"
)

func packet(typ uint8, connID uint16, seq, ack uint16, sack []byte, payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+2+len(sack)+len(payload))
	putHeader(b, typ, sack != nil, connID, 1, 2, 3, seq, ack)
	if sack != nil {
		b = append(b, 0, byte(len(sack)))
		b = append(b, sack...)
	}
	return append(b, payload...)
}

func TestParseRoundTrip(t *testing.T) {
	b := packet(stData, 513, 7, 9, []byte{1, 0, 0, 128}, []byte("hello"))
	h, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.typ != stData || h.connID != 513 || h.ts != 1 || h.tsDiff != 2 || h.wnd != 3 || h.seq != 7 || h.ack != 9 {
		t.Fatalf("header %+v", h)
	}
	if !bytes.Equal(h.sack, []byte{1, 0, 0, 128}) || string(h.payload) != "hello" {
		t.Fatalf("sack %x payload %q", h.sack, h.payload)
	}
}

// Unknown extensions (libtorrent sends a close reason, type 3) are
// skipped; a chain that runs past the packet is an error.
func TestParseExtensions(t *testing.T) {
	b := make([]byte, headerLen)
	putHeader(b, stFin, false, 1, 0, 0, 0, 1, 1)
	b[1] = 3
	b = append(b, 0, 4, 0, 0, 0, 9, 'x')
	h, err := parse(b)
	if err != nil || h.sack != nil || string(h.payload) != "x" {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := parse(b[:headerLen+3]); err == nil {
		t.Fatal("an extension past the end parsed")
	}
	for _, bad := range [][]byte{nil, b[:19], {0x42, 0}, append([]byte{0x51}, b[1:]...), append([]byte{0x12}, b[1:]...)} {
		if _, err := parse(bad); err == nil {
			t.Fatalf("%x parsed", bad)
		}
	}
}

func TestSeqLess(t *testing.T) {
	for _, c := range []struct {
		a, b uint16
		less bool
	}{{1, 2, true}, {2, 1, false}, {65535, 0, true}, {0, 65535, false}, {5, 5, false}, {100, 32000, true}} {
		if seqLess(c.a, c.b) != c.less {
			t.Fatalf("seqLess(%d, %d) = %v", c.a, c.b, !c.less)
		}
	}
}
