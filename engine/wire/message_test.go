package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

// sameMessage compares messages treating nil and empty slices alike, since
// Decode keeps empty slices around for reuse.
func sameMessage(a, b *Message) bool {
	return a.Type == b.Type && a.Index == b.Index && a.Begin == b.Begin &&
		a.Length == b.Length && a.Port == b.Port && a.ExtID == b.ExtID &&
		bytes.Equal(a.Bitfield, b.Bitfield) && bytes.Equal(a.Block, b.Block) &&
		bytes.Equal(a.ExtPayload, b.ExtPayload)
}

// frame builds a frame by hand, independently of the encoders under test.
func frame(id byte, payload ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	return append(append(b, id), payload...)
}

func allMessages() []Message {
	block := bytes.Repeat([]byte{0xab, 0xcd}, DefaultBlockLen/2)
	return []Message{
		{Type: KeepAlive},
		{Type: Choke},
		{Type: Unchoke},
		{Type: Interested},
		{Type: NotInterested},
		{Type: Have, Index: 0xdeadbeef},
		{Type: Bitfield, Bitfield: []byte{0xff, 0x80}},
		{Type: Bitfield, Bitfield: []byte{}},
		{Type: Request, Index: 7, Begin: 16384, Length: 16384},
		{Type: Piece, Index: 3, Begin: 32768, Block: block},
		{Type: Piece, Index: 3, Begin: 0, Block: nil},
		{Type: Cancel, Index: 1, Begin: 2, Length: 3},
		{Type: Port, Port: 6881},
		{Type: Suggest, Index: 42},
		{Type: HaveAll},
		{Type: HaveNone},
		{Type: Reject, Index: math.MaxUint32, Begin: math.MaxUint32, Length: math.MaxUint32},
		{Type: AllowedFast, Index: 9},
		{Type: Extended, ExtID: 0, ExtPayload: []byte("d1:md6:ut_pexi1eee")},
		{Type: Extended, ExtID: 255},
	}
}

func TestRoundTripEveryType(t *testing.T) {
	var buf []byte
	var got Message // reused across cases: stale fields must not leak
	for _, want := range allMessages() {
		buf = AppendMessage(buf[:0], &want)
		n, ok := FrameLen(buf)
		if !ok || n != len(buf) {
			t.Fatalf("%v: FrameLen = %d, %v; encoded %d bytes", want.Type, n, ok, len(buf))
		}
		if err := Decode(buf[:n], &got); err != nil {
			t.Fatalf("%v: Decode: %v", want.Type, err)
		}
		if !sameMessage(&got, &want) {
			t.Fatalf("%v: decoded %+v, want %+v", want.Type, got, want)
		}
	}
}

func TestWireBytesMatchSpec(t *testing.T) {
	// Frames written out from BEP 3/6/10, not from our encoders.
	cases := []struct {
		got, want []byte
	}{
		{AppendKeepAlive(nil), []byte{0, 0, 0, 0}},
		{AppendSimple(nil, Interested), []byte{0, 0, 0, 1, 2}},
		{AppendSimple(nil, HaveNone), []byte{0, 0, 0, 1, 15}},
		{AppendHave(nil, 0x01020304), []byte{0, 0, 0, 5, 4, 1, 2, 3, 4}},
		{AppendRequest(nil, 1, 0x4000, 0x4000), []byte{0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0}},
		{AppendReject(nil, 1, 2, 3), []byte{0, 0, 0, 13, 16, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}},
		{AppendPieceHeader(nil, 2, 0x8000, 0x4000), []byte{0, 0, 0x40, 0x09, 7, 0, 0, 0, 2, 0, 0, 0x80, 0}},
		{AppendPort(nil, 6881), []byte{0, 0, 0, 3, 9, 0x1a, 0xe1}},
		{AppendAllowedFast(nil, 5), []byte{0, 0, 0, 5, 17, 0, 0, 0, 5}},
		{AppendBitfield(nil, []byte{0xf0}), []byte{0, 0, 0, 2, 5, 0xf0}},
		{AppendExtended(nil, 3, []byte("x")), []byte{0, 0, 0, 3, 20, 3, 'x'}},
	}
	for i, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("case %d: got % x, want % x", i, c.got, c.want)
		}
	}
}

func TestAppendPreservesPrefix(t *testing.T) {
	dst := []byte("prefix")
	dst = AppendHave(dst, 1)
	if !bytes.HasPrefix(dst, []byte("prefix")) || len(dst) != 6+9 {
		t.Fatalf("AppendHave clobbered dst: %q", dst)
	}
}

func TestPieceHeaderPlusBlockDecodes(t *testing.T) {
	block := []byte("some block bytes")
	wire := append(AppendPieceHeader(nil, 4, 16, uint32(len(block))), block...)
	if len(wire) != pieceHeaderLen+len(block) {
		t.Fatalf("header is %d bytes, want 13", len(wire)-len(block))
	}
	var m Message
	if err := Decode(wire, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != Piece || m.Index != 4 || m.Begin != 16 || !bytes.Equal(m.Block, block) {
		t.Fatalf("got %+v", m)
	}
}

func TestDecodeDoesNotRetainFrame(t *testing.T) {
	var m Message
	for _, in := range [][]byte{
		frame(byte(Piece), 0, 0, 0, 1, 0, 0, 0, 0, 'a', 'b'),
		frame(byte(Bitfield), 0xf0),
		frame(byte(Extended), 1, 'p', 'q'),
	} {
		if err := Decode(in, &m); err != nil {
			t.Fatal(err)
		}
		before := m
		before.Block = bytes.Clone(m.Block)
		before.Bitfield = bytes.Clone(m.Bitfield)
		before.ExtPayload = bytes.Clone(m.ExtPayload)
		for i := range in { // the event loop overwrites its buffer
			in[i] = 0x55
		}
		if !sameMessage(&m, &before) {
			t.Fatalf("message changed when the frame buffer was overwritten: %+v", m)
		}
	}
}

func TestDecodeReusesCapacity(t *testing.T) {
	m := Message{Block: make([]byte, 0, 64)}
	backing := &m.Block[:1][0]
	if err := Decode(frame(byte(Piece), 0, 0, 0, 1, 0, 0, 0, 0, 'x'), &m); err != nil {
		t.Fatal(err)
	}
	if &m.Block[0] != backing {
		t.Fatal("Decode allocated a new Block although capacity sufficed")
	}
	if err := Decode(frame(byte(Choke)), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Block) != 0 || cap(m.Block) != 64 || m.Index != 0 {
		t.Fatalf("choke left stale fields: %+v (cap %d)", m, cap(m.Block))
	}
}

func TestDecodeMalformed(t *testing.T) {
	huge := []byte{0x80, 0, 0, 0, byte(Piece)} // 2^31 prefix
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short prefix", []byte{0, 0, 0}, ErrTruncated},
		{"2^31 prefix", huge, ErrTruncated},
		{"truncated have", frame(byte(Have), 0, 0, 0, 1)[:7], ErrTruncated},
		{"trailing bytes", append(frame(byte(Choke)), 0), ErrBadLength},
		{"choke with payload", frame(byte(Choke), 0), ErrBadLength},
		{"have-all with payload", frame(byte(HaveAll), 1), ErrBadLength},
		{"have 3 bytes", frame(byte(Have), 0, 0, 1), ErrBadLength},
		{"have 5 bytes", frame(byte(Have), 0, 0, 0, 0, 1), ErrBadLength},
		{"suggest 0 bytes", frame(byte(Suggest)), ErrBadLength},
		{"allowed-fast 8 bytes", frame(byte(AllowedFast), 0, 0, 0, 0, 0, 0, 0, 0), ErrBadLength},
		{"request 11 bytes", frame(byte(Request), make([]byte, 11)...), ErrBadLength},
		{"cancel 13 bytes", frame(byte(Cancel), make([]byte, 13)...), ErrBadLength},
		{"reject 4 bytes", frame(byte(Reject), make([]byte, 4)...), ErrBadLength},
		{"piece 7 bytes", frame(byte(Piece), make([]byte, 7)...), ErrBadLength},
		{"port 1 byte", frame(byte(Port), 1), ErrBadLength},
		{"port 3 bytes", frame(byte(Port), 1, 2, 3), ErrBadLength},
		{"extended without id", frame(byte(Extended)), ErrBadLength},
		{"unknown id 10", frame(10, 1, 2), ErrUnknownMessage},
		{"unknown id 255", frame(255), ErrUnknownMessage},
		{"BEP 52 hash request", frame(21, make([]byte, 48)...), ErrUnknownMessage},
	}
	for _, c := range cases {
		var m Message
		err := Decode(c.in, &m)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestUnknownMessageReportsID(t *testing.T) {
	m := Message{Index: 99}
	err := Decode(frame(12, 'x'), &m)
	if err != ErrUnknownMessage { // unwrapped on purpose: no allocation
		t.Fatalf("got %v", err)
	}
	if m.Type != 12 || m.Index != 0 {
		t.Fatalf("got %+v, want raw id 12 and zeroed fields", m)
	}
}

func TestFrameLenAndCheckFrame(t *testing.T) {
	if _, ok := FrameLen([]byte{0, 0, 1}); ok {
		t.Fatal("FrameLen ok with 3 bytes")
	}
	if n, ok := FrameLen([]byte{0, 0, 0, 0}); !ok || n != 4 {
		t.Fatalf("keep-alive FrameLen = %d, %v", n, ok)
	}
	if n, _ := FrameLen([]byte{0xff, 0xff, 0xff, 0xff}); n != math.MaxInt32 {
		t.Fatalf("max prefix FrameLen = %d, want clamped to MaxInt32", n)
	}
	limit := MaxFrame(DefaultBlockLen, 1000)
	for _, prefix := range []uint32{1 << 31, math.MaxUint32, uint32(limit - 3)} {
		hdr := binary.BigEndian.AppendUint32(nil, prefix)
		if _, err := CheckFrame(hdr, limit); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("prefix %d: got %v, want ErrFrameTooLarge", prefix, err)
		}
	}
	hdr := binary.BigEndian.AppendUint32(nil, uint32(limit-4))
	if n, err := CheckFrame(hdr, limit); err != nil || n != limit {
		t.Errorf("frame of exactly the limit: %d, %v", n, err)
	}
	if _, err := CheckFrame([]byte{0}, limit); !errors.Is(err, ErrTruncated) {
		t.Errorf("1 byte: got %v, want ErrTruncated", err)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = CheckFrame(hdr, limit) })
	if allocs != 0 {
		t.Errorf("CheckFrame allocates %v times on success", allocs)
	}
}

func TestMaxFrameAdmitsLegitimateFrames(t *testing.T) {
	for _, c := range []struct{ block, pieces int }{
		{DefaultBlockLen, 1}, {0, 100}, {MaxBlockLen, 10}, {DefaultBlockLen, 4_000_000}, {DefaultBlockLen, 0},
	} {
		limit := MaxFrame(c.block, c.pieces)
		block := c.block
		if block <= 0 {
			block = DefaultBlockLen
		}
		piece := AppendPieceHeader(nil, 0, 0, uint32(block))
		if n, _ := FrameLen(piece); n > limit {
			t.Errorf("%+v: a %d-byte block (frame %d) exceeds limit %d", c, block, n, limit)
		}
		bf := AppendBitfield(nil, make([]byte, BitfieldLen(c.pieces)))
		if len(bf) > limit {
			t.Errorf("%+v: full bitfield frame %d exceeds limit %d", c, len(bf), limit)
		}
		ext := AppendExtended(nil, 1, make([]byte, MaxExtendedLen))
		if len(ext) > limit {
			t.Errorf("%+v: extended frame %d exceeds limit %d", c, len(ext), limit)
		}
		if limit > 1<<20 && c.pieces < 8<<20 {
			t.Errorf("%+v: limit %d is far above any legitimate frame", c, limit)
		}
	}
	if MaxFrame(1<<30, 1) > MaxFrame(MaxBlockLen, 1) {
		t.Error("block size above MaxBlockLen was not capped")
	}
}

func TestAppendMessageUnknownTypePanics(t *testing.T) {
	for _, typ := range []Type{10, 99, -2} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendMessage(%v) did not panic", typ)
				}
			}()
			AppendMessage(nil, &Message{Type: typ})
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendSimple(Have) did not panic")
		}
	}()
	AppendSimple(nil, Have)
}

func TestTypeString(t *testing.T) {
	seen := map[string]Type{}
	for _, m := range allMessages() {
		s := m.Type.String()
		if prev, dup := seen[s]; dup && prev != m.Type {
			t.Errorf("%d and %d both print as %q", prev, m.Type, s)
		}
		seen[s] = m.Type
	}
	if got := Type(10).String(); got != fmt.Sprintf("unknown(%d)", 10) {
		t.Errorf("Type(10) = %q", got)
	}
}
