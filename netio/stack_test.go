package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"gotorrentserver/engine/wire"
)

// testHandler is the connection's side of a handshake for stack tests: it
// records what the stack read and answers with a fixed frame bound.
type testHandler struct {
	got      []wire.Handshake
	maxFrame int
	err      error
}

func (h *testHandler) handshook(hs wire.Handshake) (int, error) {
	h.got = append(h.got, hs)
	return h.maxFrame, h.err
}

// fed is what a stack made of a byte stream.
type fed struct {
	msgs  []wire.Message
	err   error
	wakes int // turns that ended with frames possibly left
	fed   int // bytes fed when the stack reported err
}

// feed gives data to a fresh stack chunk bytes at a time, running the
// stack as onTraffic would: after each arrival, turn after turn while it
// says frames may remain, limit frames a turn.
func feed(data []byte, chunk, limit int, h *testHandler) fed {
	var st stack
	tr := &memTransport{}
	var r fed
	for off := 0; off < len(data); {
		n := min(chunk, len(data)-off)
		tr.feed(data[off : off+n])
		off += n
		for {
			msgs, more, err := st.input(tr, limit, h)
			r.msgs = append(r.msgs, msgs...)
			if err != nil {
				r.err, r.fed = err, off
				return r
			}
			if !more {
				break
			}
			r.wakes++
		}
	}
	return r
}

var testPeerHS = wire.Handshake{
	Reserved: wire.DefaultReserved(true),
	InfoHash: [20]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
	PeerID:   [20]byte{'-', 'T', 'T', '0', '0', '0', '1', '-', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'},
}

const testMaxFrame = 13 + 16<<10 + 100

// testStream is a handshake and one of each kind of frame a peer sends,
// an unknown id among them, and the messages they decode to.
func testStream() ([]byte, []wire.Message) {
	block := bytes.Repeat([]byte("0123456789abcdef"), 1<<10)
	msgs := []wire.Message{
		{Type: wire.KeepAlive},
		{Type: wire.Bitfield, Bitfield: []byte{0xff, 0x80}},
		{Type: wire.Interested},
		{Type: wire.Have, Index: 7},
		{Type: wire.Request, Index: 1, Begin: 16384, Length: 16384},
		{Type: wire.Piece, Index: 2, Begin: 0, Block: block},
		{Type: wire.KeepAlive},
		{Type: wire.Extended, ExtID: 0, ExtPayload: []byte("d1:md6:ut_pexi1eee")},
		{Type: wire.Cancel, Index: 1, Begin: 16384, Length: 16384},
	}
	b := wire.AppendHandshake(nil, testPeerHS)
	for i := range msgs {
		b = wire.AppendMessage(b, &msgs[i])
		if i == 3 {
			b = append(b, 0, 0, 0, 3, 99, 1, 2) // unknown id 99: skipped
		}
	}
	return b, msgs
}

// However the bytes arrive, one at a time, in frames split anywhere or all
// at once, the stack reports the same handshake and the same messages.
func TestStackAnyChunking(t *testing.T) {
	data, want := testStream()
	for _, chunk := range []int{1, 2, 3, 4, 5, 7, 13, 17, 67, 68, 69, 72, 1000, 16397, len(data)} {
		h := &testHandler{maxFrame: testMaxFrame}
		r := feed(data, chunk, 128, h)
		if r.err != nil {
			t.Fatalf("chunks of %d: %v", chunk, r.err)
		}
		if len(h.got) != 1 || h.got[0] != testPeerHS {
			t.Fatalf("chunks of %d: handshakes %+v, want one %+v", chunk, h.got, testPeerHS)
		}
		if !msgsEqual(r.msgs, want) {
			t.Fatalf("chunks of %d: messages\n%+v\nwant\n%+v", chunk, r.msgs, want)
		}
	}
}

// msgsEqual compares messages, a nil slice equal to an empty one.
func msgsEqual(a, b []wire.Message) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(m wire.Message) wire.Message {
		for _, p := range []*[]byte{&m.Bitfield, &m.Block, &m.ExtPayload} {
			if len(*p) == 0 {
				*p = nil
			}
		}
		return m
	}
	for i := range a {
		if !reflect.DeepEqual(norm(a[i]), norm(b[i])) {
			return false
		}
	}
	return true
}

// A handshake that does not name the BitTorrent protocol is an error as
// soon as its 68 bytes are in; the connection never hears of it.
func TestStackBadProtocol(t *testing.T) {
	data := wire.AppendHandshake(nil, testPeerHS)
	data[len("BitTorrent protoco")] = 'L'
	data = append(data, wire.AppendSimple(nil, wire.Interested)...)
	for _, chunk := range []int{1, 68, len(data)} {
		h := &testHandler{maxFrame: testMaxFrame}
		r := feed(data, chunk, 128, h)
		if !errors.Is(r.err, wire.ErrBadProtocol) || len(r.msgs) != 0 || len(h.got) != 0 {
			t.Fatalf("chunks of %d: err %v, %d messages, %d handshakes", chunk, r.err, len(r.msgs), len(h.got))
		}
		if chunk == 1 && r.fed != wire.HandshakeLen {
			t.Fatalf("error after %d bytes, want %d", r.fed, wire.HandshakeLen)
		}
	}
}

// A handshake the connection refuses (a torrent we lack) ends the input:
// frames after it are not decoded.
func TestStackHandshakeRefused(t *testing.T) {
	data, _ := testStream()
	h := &testHandler{maxFrame: testMaxFrame, err: errTestReject}
	r := feed(data, len(data), 128, h)
	if !errors.Is(r.err, errTestReject) || len(r.msgs) != 0 || len(h.got) != 1 {
		t.Fatalf("err %v, %d messages, %d handshakes", r.err, len(r.msgs), len(h.got))
	}
}

// A length prefix over the torrent's bound is refused once its 4 bytes are
// in, before the body it announces; frames before it are still returned.
func TestStackOverlongLength(t *testing.T) {
	data := wire.AppendHandshake(nil, testPeerHS)
	data = wire.AppendSimple(data, wire.Unchoke)
	data = binary.BigEndian.AppendUint32(data, testMaxFrame-4+1)
	data = append(data, make([]byte, 100)...)
	h := &testHandler{maxFrame: testMaxFrame}
	r := feed(data, 1, 128, h)
	if !errors.Is(r.err, wire.ErrFrameTooLarge) {
		t.Fatalf("err %v, want ErrFrameTooLarge", r.err)
	}
	if r.fed != wire.HandshakeLen+5+4 {
		t.Fatalf("refused after %d bytes, want at the prefix's last (%d)", r.fed, wire.HandshakeLen+5+4)
	}
	if len(r.msgs) != 1 || r.msgs[0].Type != wire.Unchoke {
		t.Fatalf("messages before the bad frame: %+v", r.msgs)
	}
	// The largest frame the bound allows is fine.
	ok := wire.AppendHandshake(nil, testPeerHS)
	ok = wire.AppendPiece(ok, 0, 0, make([]byte, testMaxFrame-13))
	if r := feed(ok, 4096, 128, h); r.err != nil || len(r.msgs) != 1 {
		t.Fatalf("a frame at the bound: err %v, %d messages", r.err, len(r.msgs))
	}
}

// A frame that breaks the protocol (a have of the wrong size) is an error;
// what came before it is decoded.
func TestStackBadFrame(t *testing.T) {
	data := wire.AppendHandshake(nil, testPeerHS)
	data = wire.AppendHave(data, 3)
	data = append(data, 0, 0, 0, 3, byte(wire.Have), 0, 0)
	for _, chunk := range []int{1, len(data)} {
		r := feed(data, chunk, 128, &testHandler{maxFrame: testMaxFrame})
		if !errors.Is(r.err, wire.ErrBadLength) || len(r.msgs) != 1 || r.msgs[0].Index != 3 {
			t.Fatalf("chunks of %d: err %v, messages %+v", chunk, r.err, r.msgs)
		}
	}
}

// Keep-alives are messages of their own (the session's idle timer counts
// them), however many arrive together.
func TestStackKeepAlives(t *testing.T) {
	data := wire.AppendHandshake(nil, testPeerHS)
	for range 5 {
		data = wire.AppendKeepAlive(data)
	}
	for _, chunk := range []int{1, 3, len(data)} {
		r := feed(data, chunk, 128, &testHandler{maxFrame: testMaxFrame})
		if r.err != nil || len(r.msgs) != 5 {
			t.Fatalf("chunks of %d: err %v, %d messages", chunk, r.err, len(r.msgs))
		}
		for _, m := range r.msgs {
			if m.Type != wire.KeepAlive {
				t.Fatalf("chunks of %d: %v, want keep-alives", chunk, m.Type)
			}
		}
	}
}

// At most limit frames a turn, then the stack yields and says frames may
// remain; a partial frame waits for the socket instead of another turn.
func TestStackFramesPerWake(t *testing.T) {
	var st stack
	tr := &memTransport{}
	h := &testHandler{maxFrame: testMaxFrame}
	tr.feed(wire.AppendHandshake(nil, testPeerHS))
	for i := range 10 {
		tr.feed(wire.AppendHave(nil, uint32(i)))
	}
	partial := wire.AppendRequest(nil, 1, 2, 3)
	tr.feed(partial[:9])
	var got []uint32
	for turn, want := range []struct {
		n    int
		more bool
	}{{4, true}, {4, true}, {2, false}, {0, false}} {
		msgs, more, err := st.input(tr, 4, h)
		if err != nil || len(msgs) != want.n || more != want.more {
			t.Fatalf("turn %d: %d messages, more %v, err %v; want %d, %v", turn, len(msgs), more, err, want.n, want.more)
		}
		for _, m := range msgs {
			got = append(got, m.Index)
		}
	}
	for i, idx := range got {
		if idx != uint32(i) {
			t.Fatalf("haves out of order: %v", got)
		}
	}
	tr.feed(partial[9:])
	if msgs, _, err := st.input(tr, 4, h); err != nil || len(msgs) != 1 || msgs[0].Type != wire.Request {
		t.Fatalf("the completed frame: %+v, %v", msgs, err)
	}
	if len(h.got) != 1 {
		t.Fatalf("%d handshakes handled, want 1", len(h.got))
	}
}

// Framing works on a plain slice: split finds the first whole frame and
// refuses an over-long one from its prefix alone.
func TestFramerSplit(t *testing.T) {
	f := framer{max: 64}
	b := wire.AppendHave(nil, 9)
	b = wire.AppendKeepAlive(b)
	for n := range len(wire.AppendHave(nil, 9)) {
		if fr, err := f.split(b[:n]); fr != nil || err != nil {
			t.Fatalf("%d bytes: frame %v, err %v", n, fr, err)
		}
	}
	fr, err := f.split(b)
	if err != nil || len(fr) != 9 {
		t.Fatalf("frame %v, err %v", fr, err)
	}
	var m wire.Message
	if keep, err := decodeFrame(fr, &m); !keep || err != nil || m.Type != wire.Have || m.Index != 9 {
		t.Fatalf("decoded %+v, keep %v, err %v", m, keep, err)
	}
	if fr, err := f.split(b[9:]); err != nil || len(fr) != 4 {
		t.Fatalf("keep-alive: frame %v, err %v", fr, err)
	}
	if _, err := f.split(binary.BigEndian.AppendUint32(nil, 61)); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("over-long prefix: %v", err)
	}
}

// The outbound stages of the plain stack hand the iovec on as it is: the
// same buffers, so read-cache views still go out without a copy.
func TestStackOutputPlain(t *testing.T) {
	var st stack
	tr := &memTransport{}
	bufs := [][]byte{[]byte("hdr"), []byte("block")}
	if err := st.output(bufs, tr); err != nil || len(tr.writes) != 1 {
		t.Fatalf("err %v, %d writes", err, len(tr.writes))
	}
	out := tr.writes[0]
	if len(out) != 2 || &out[0][0] != &bufs[0][0] || &out[1][0] != &bufs[1][0] {
		t.Fatal("the plain stage copied or changed the iovec")
	}
}
