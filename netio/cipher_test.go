package netio

import (
	"bytes"
	"errors"
	"testing"

	"gotorrentserver/engine/wire"
)

// end is one connection's stack in a piped pair: its transport receives
// what the other end wrote, and its handler answers an inbound handshake
// with ours, as peerConn does.
type end struct {
	st      stack
	tr      memTransport
	inbound bool
	hs      []wire.Handshake
	queued  [][]byte // sent and not yet through the stack
	msgs    []wire.Message
	err     error
}

func (e *end) handshook(hs wire.Handshake) (int, error) {
	e.hs = append(e.hs, hs)
	if e.inbound {
		e.queued = append(e.queued, wire.AppendHandshake(nil, testPeerHS))
	}
	return testMaxFrame, nil
}

// flush runs what is queued through the stack's output, as peerConn.flush.
func (e *end) flush() {
	if len(e.queued) > 0 || e.st.cipher.pending() {
		if err := e.st.output(e.queued, &e.tr); err != nil && e.err == nil {
			e.err = err
		}
		e.queued = nil
	}
}

// take returns what the end wrote since the last call.
func (e *end) take() []byte {
	var b []byte
	for _, w := range e.tr.writes {
		for _, buf := range w {
			b = append(b, buf...)
		}
	}
	e.tr.writes = nil
	return b
}

// arrive hands data to the end chunk bytes at a time, running its stack
// after each, turn after turn while frames may remain.
func (e *end) arrive(data []byte, chunk int) {
	for off := 0; off < len(data) && e.err == nil; {
		n := min(chunk, len(data)-off)
		e.tr.feed(data[off : off+n])
		off += n
		for e.err == nil {
			msgs, more, err := e.st.input(&e.tr, 128, e)
			e.msgs = append(e.msgs, msgs...)
			if err != nil {
				e.err = err
			}
			if !more {
				break
			}
		}
	}
}

// newPair is a dialing end (MSE when encrypt) and an answering end.
func newPair(t testing.TB, encrypt bool, dialPolicy, answerPolicy Encryption) (a, b *end) {
	t.Helper()
	a, b = &end{}, &end{inbound: true}
	if err := a.st.cipher.dial(encrypt, dialPolicy, testSKey, testRand(1)); err != nil {
		t.Fatal(err)
	}
	b.st.cipher.answer(answerPolicy, testLookup, testRand(2))
	a.queued = append(a.queued, wire.AppendHandshake(nil, testPeerHS)) // open's greeting
	return a, b
}

// pump moves bytes both ways until neither end writes more or one fails.
func pump(a, b *end, chunk int) {
	for range 100 {
		a.flush()
		toB := a.take()
		b.arrive(toB, chunk)
		b.flush()
		toA := b.take()
		a.arrive(toA, chunk)
		if len(toA) == 0 && len(toB) == 0 || a.err != nil || b.err != nil {
			return
		}
	}
}

// Over MSE the handshakes and then frames of every kind pass both ways,
// RC4 or plaintext as agreed, however the bytes are cut; with RC4 nothing
// of the payload is on the wire in the clear.
func TestCipherStacksTalk(t *testing.T) {
	stream, want := testStream()
	frames := stream[wire.HandshakeLen:]
	for _, tc := range []struct {
		name            string
		encrypt         bool
		dial, answer    Encryption
		rc4, plainBytes bool
	}{
		{"prefer-prefer", true, EncryptionPrefer, EncryptionPrefer, true, false},
		{"require-prefer", true, EncryptionRequire, EncryptionPrefer, true, false},
		{"prefer-require", true, EncryptionPrefer, EncryptionRequire, true, false},
		{"plain-prefer", false, EncryptionPrefer, EncryptionPrefer, false, true},
		{"plain-disable", false, EncryptionDisable, EncryptionDisable, false, true},
	} {
		for _, chunk := range []int{1, 5, 68, 97, 1000, 1 << 20} {
			a, b := newPair(t, tc.encrypt, tc.dial, tc.answer)
			pump(a, b, chunk)
			a.queued = append(a.queued, frames)
			b.queued = append(b.queued, frames)
			var wire1, wire2 []byte
			a.flush()
			wire1 = a.take()
			b.arrive(wire1, chunk)
			b.flush()
			wire2 = b.take()
			a.arrive(wire2, chunk)
			if a.err != nil || b.err != nil {
				t.Fatalf("%s chunk %d: errors %v / %v", tc.name, chunk, a.err, b.err)
			}
			if len(a.hs) != 1 || len(b.hs) != 1 || a.hs[0] != testPeerHS || b.hs[0] != testPeerHS {
				t.Fatalf("%s chunk %d: handshakes %d / %d", tc.name, chunk, len(a.hs), len(b.hs))
			}
			if !msgsEqual(a.msgs, want) || !msgsEqual(b.msgs, want) {
				t.Fatalf("%s chunk %d: %d and %d messages, want %d", tc.name, chunk, len(a.msgs), len(b.msgs), len(want))
			}
			if got := a.st.cipher.mode == cipherRC4 && b.st.cipher.mode == cipherRC4; got != tc.rc4 {
				t.Fatalf("%s: RC4 %v, want %v", tc.name, got, tc.rc4)
			}
			if clear := bytes.Equal(wire1, frames) && bytes.Equal(wire2, frames); clear != tc.plainBytes {
				t.Fatalf("%s: frames in the clear %v, want %v", tc.name, clear, tc.plainBytes)
			}
			if tc.plainBytes && (a.st.cipher.x != nil || b.st.cipher.x != nil) {
				t.Fatalf("%s: plaintext stages keep their state", tc.name)
			}
		}
	}
}

// An MSE dialer offering plaintext too gets plaintext from a peer that
// accepts only plaintext; the IA (our handshake) is still read first.
func TestCipherPlaintextOverMSE(t *testing.T) {
	stream, want := testStream()
	for _, chunk := range []int{1, 70, 1 << 20} {
		a, b := newPair(t, true, EncryptionPrefer, EncryptionPrefer)
		// Ya makes the receiver start its handshake; it then accepts
		// plaintext only, as libtorrent does by default.
		a.flush()
		b.arrive(a.take(), chunk)
		b.st.cipher.x.shake.methods = cryptoPlain
		pump(a, b, chunk)
		plain := func(e *end) bool { return e.st.cipher.mode == cipherPlain || e.st.cipher.mode == cipherPlainTail }
		if a.err != nil || b.err != nil || !plain(a) || !plain(b) || len(b.hs) != 1 {
			t.Fatalf("chunk %d: errors %v / %v, modes %d / %d", chunk, a.err, b.err, a.st.cipher.mode, b.st.cipher.mode)
		}
		frames := stream[wire.HandshakeLen:]
		a.queued = append(a.queued, frames)
		a.flush()
		out := a.take()
		if !bytes.Equal(out, frames) {
			t.Fatal("plaintext agreed, yet the frames were changed")
		}
		b.arrive(out, chunk)
		if !msgsEqual(b.msgs, want) {
			t.Fatalf("chunk %d: %d messages", chunk, len(b.msgs))
		}
		// Plaintext for good: nothing beyond the mode is kept.
		b.arrive(wire.AppendKeepAlive(nil), chunk)
		if a.st.cipher.x != nil || b.st.cipher.x != nil {
			t.Fatalf("chunk %d: plaintext stages keep their state", chunk)
		}
	}
}

// The policies' refusals: require closes on a plaintext handshake, disable
// on an MSE one (it is no BitTorrent handshake), an MSE peer offering only
// plaintext is refused under require, and a BitTorrent handshake for
// another torrent than the encrypted one named is refused.
func TestCipherRefusals(t *testing.T) {
	a, b := newPair(t, false, EncryptionPrefer, EncryptionRequire)
	pump(a, b, 1)
	if !errors.Is(b.err, errPlaintextRefused) || len(b.hs) != 0 {
		t.Fatalf("require, plaintext peer: %v, %d handshakes", b.err, len(b.hs))
	}
	a, b = newPair(t, true, EncryptionPrefer, EncryptionDisable)
	pump(a, b, 1<<20)
	if !errors.Is(b.err, wire.ErrBadProtocol) {
		t.Fatalf("disable, MSE peer: %v", b.err)
	}
	a, b = newPair(t, true, EncryptionPrefer, EncryptionRequire)
	a.st.cipher.x.shake.methods = cryptoPlain
	pump(a, b, 1<<20)
	if !errors.Is(b.err, errMSENoMethod) {
		t.Fatalf("require, plaintext offered: %v", b.err)
	}
	a, b = newPair(t, true, EncryptionPrefer, EncryptionPrefer)
	other := testPeerHS
	other.InfoHash[0] ^= 1
	a.queued = [][]byte{wire.AppendHandshake(nil, other)}
	pump(a, b, 1<<20)
	if !errors.Is(b.err, errMSEWrongTorrent) || len(b.hs) != 0 {
		t.Fatalf("handshake for another torrent: %v", b.err)
	}
}

// Sending through RC4 never writes into the caller's buffers: a have
// message is shared by every peer, a block may be a read-cache view.
func TestCipherSendLeavesBuffers(t *testing.T) {
	a, b := newPair(t, true, EncryptionRequire, EncryptionPrefer)
	pump(a, b, 1<<20)
	if a.st.cipher.mode != cipherRC4 {
		t.Fatal("no RC4")
	}
	shared := bytes.Repeat([]byte{7}, 3*encryptChunk+5)
	keep := append([]byte(nil), shared...)
	hdr := wire.AppendPieceHeader(nil, 1, 0, uint32(len(shared)))
	if err := a.st.output([][]byte{hdr, shared}, &a.tr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, keep) {
		t.Fatal("a sent buffer was encrypted in place")
	}
	if len(a.tr.writes) != 4 {
		t.Fatalf("%d writes, want one per 256 KiB chunk (4)", len(a.tr.writes))
	}
}

// Bytes a peer sends while the encrypted handshake is still under way,
// before we could read them, are kept and decrypted once, and a backlog
// decoded FramesPerWake at a time is not copied again on each turn.
func TestRxBuf(t *testing.T) {
	var r rxBuf
	copy(r.tail(10), "0123456789")
	r.Discard(4)
	copy(r.tail(3), "abc")
	if got := string(r.Peek(r.Buffered())); got != "456789abc" {
		t.Fatalf("%q", got)
	}
	r.settle()
	if r.Buffered() != 9 || cap(r.b) != rxSmall {
		t.Fatalf("buffered %d, cap %d", r.Buffered(), cap(r.b))
	}
	r.Discard(9)
	r.settle()
	if r.b != nil {
		t.Fatal("an emptied buffer was kept")
	}
	// A large read leaves a small remainder: it moves to a small buffer.
	fill := r.tail(200 << 10)
	for i := range fill {
		fill[i] = byte(i)
	}
	r.Discard(200<<10 - 100)
	r.settle()
	if cap(r.b) != rxSmall || r.Peek(100)[0] != byte((200<<10-100)%256) {
		t.Fatalf("remainder not moved: cap %d", cap(r.b))
	}
	// A long backlog with bytes trickling in behind it: appends cost
	// O(1) amortised, not a copy of the backlog each time.
	r.release()
	r.tail(rxLarge)
	moved := 0
	for range 1000 {
		r.Discard(10)
		before := &r.b[:1][0]
		r.tail(10)
		if &r.b[:1][0] != before {
			moved++
		}
	}
	if moved > 2 {
		t.Fatalf("the backlog moved %d times for 1000 small appends", moved)
	}
}

// BenchmarkCipherSend is the RC4 send path of one connection: 16 KiB
// blocks through the scratch buffer into a transport that keeps nothing.
func BenchmarkCipherSend(b *testing.B) {
	a, p := newPair(b, true, EncryptionRequire, EncryptionPrefer)
	pump(a, p, 1<<20)
	block := make([]byte, 16<<10)
	hdr := wire.AppendPieceHeader(nil, 1, 0, uint32(len(block)))
	bufs := make([][]byte, 0, 32)
	for range 16 {
		bufs = append(bufs, hdr, block)
	}
	var w discardWriter
	b.SetBytes(int64(16 * (len(hdr) + len(block))))
	for b.Loop() {
		a.st.output(bufs, &w)
	}
}

type discardWriter struct{}

func (discardWriter) Writev([][]byte) error { return nil }

// Under RC4 a backlog decoded a few frames a turn comes out whole and in
// order, the later turns reading what the stage kept.
func TestCipherFramesPerWake(t *testing.T) {
	a, b := newPair(t, true, EncryptionRequire, EncryptionRequire)
	pump(a, b, 1<<20)
	var haves []byte
	for i := range 300 {
		haves = wire.AppendHave(haves, uint32(i))
	}
	a.queued = [][]byte{haves[:1000], haves[1000:]}
	a.flush()
	b.tr.feed(a.take())
	var got []wire.Message
	for turn := 0; ; turn++ {
		msgs, more, err := b.st.input(&b.tr, 4, b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
		if !more {
			break
		}
		if b.tr.Buffered() != 0 {
			t.Fatal("the transport still holds bytes the stage should have taken")
		}
	}
	if len(got) != 300 {
		t.Fatalf("%d haves", len(got))
	}
	for i, m := range got {
		if m.Type != wire.Have || m.Index != uint32(i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
}
