package netio

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"testing"

	"gotorrentserver/engine/wire"
)

// FuzzStackInput: whatever a peer sends, the stack never panics, and how
// the bytes are cut into arrivals changes nothing: the same messages, the
// same error, as when they all arrive at once. The frame bound is small so
// that the fuzzer reaches it.
func FuzzStackInput(f *testing.F) {
	stream, _ := testStream()
	f.Add(stream, byte(1))
	f.Add(stream[:100], byte(7))
	hs := wire.AppendHandshake(nil, testPeerHS)
	f.Add(append(hs, 0, 0, 0, 0, 0, 0, 0, 1, 2), byte(3))
	f.Add(append(hs, 0xff, 0xff, 0xff, 0xff), byte(2))
	f.Add(append(hs, 0, 0, 0, 3, 4, 0, 0), byte(5))
	f.Add([]byte("\x13BitTorrent protocoL"), byte(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		const limit = 3
		whole := feed(data, len(data)+1, limit, &testHandler{maxFrame: 300})
		cut := feed(data, int(chunk)%67+1, limit, &testHandler{maxFrame: 300})
		if (whole.err == nil) != (cut.err == nil) || whole.err != nil && whole.err.Error() != cut.err.Error() {
			t.Fatalf("error %v at once, %v in chunks of %d", whole.err, cut.err, int(chunk)%67+1)
		}
		if !msgsEqual(whole.msgs, cut.msgs) {
			t.Fatalf("%d messages at once, %d in chunks of %d", len(whole.msgs), len(cut.msgs), int(chunk)%67+1)
		}
		for _, m := range whole.msgs {
			if len(m.Block) > 300 || len(m.Bitfield) > 300 || len(m.ExtPayload) > 300 {
				t.Fatalf("a %v message past the frame bound", m.Type)
			}
		}
	})
}

// FuzzMSE: whatever a peer sends during or after the encrypted handshake,
// the stack never panics, fails within the padding bounds, and how the
// bytes are cut into arrivals changes nothing. mode picks whom the bytes
// go to and how far they get:
//
//	0: an answering stack, the bytes as they come (garbage, or plaintext)
//	1: a dialing stack, the bytes as the answer to its Ya
//	2: an answering stack after a genuine Ya and sync marker: the bytes are
//	   message 3's plaintext (VC, crypto_provide, PadC, IA, then payload),
//	   encrypted with the right key
//	3: a dialing stack after a genuine Yb: data[0] zero bytes of PadB, then
//	   the rest is message 4's plaintext (VC, crypto_select, PadD, payload)
//
// Keys come from fixed seeds, so both runs of an input see the same ones.
func FuzzMSE(f *testing.F) {
	stream, _ := testStream()
	f.Add(stream, byte(0), byte(1))
	f.Add(bytes.Repeat([]byte{0x5a}, mseKeyLen+mseReq1Window+10), byte(0), byte(97))
	f.Add(bytes.Repeat([]byte{0x5a}, mseKeyLen+mseVCWindow+10), byte(1), byte(13))
	f.Add(append(header3(cryptoRC4, 0, stream[:wire.HandshakeLen]), stream[wire.HandshakeLen:]...), byte(2), byte(7))
	f.Add(append(header3(cryptoPlain|cryptoRC4, 3, stream[:20]), stream[20:]...), byte(2), byte(66))
	f.Add(append(header3(cryptoPlain, 0, nil), stream...), byte(2), byte(1))
	f.Add(append(header3(cryptoPlain, 0, stream[:30]), stream[30:]...), byte(2), byte(9))
	f.Add(append(append([]byte{5}, header4(cryptoRC4, 2)...), stream...), byte(3), byte(5))
	f.Add(append(append([]byte{0}, header4(cryptoPlain, 0)...), stream...), byte(3), byte(200))
	f.Fuzz(func(t *testing.T, data []byte, mode, chunk byte) {
		mode %= 4
		whole := mseRun(t, mode, data, len(data)+1)
		cut := mseRun(t, mode, data, int(chunk)%67+1)
		if (whole.err == nil) != (cut.err == nil) || whole.err != nil && whole.err.Error() != cut.err.Error() {
			t.Fatalf("mode %d: error %v at once, %v in chunks of %d", mode, whole.err, cut.err, int(chunk)%67+1)
		}
		if !msgsEqual(whole.msgs, cut.msgs) || len(whole.hs) != len(cut.hs) {
			t.Fatalf("mode %d: %d messages at once, %d in chunks", mode, len(whole.msgs), len(cut.msgs))
		}
		if whole.st.cipher.negotiating() && whole.err == nil && len(data) > mseKeyLen+mseReq1Window+sha1.Size+mseVCLen+6+mseMaxPad+2+0xffff {
			t.Fatalf("mode %d: still negotiating after %d bytes", mode, len(data))
		}
	})
}

// encryptedLen is how much of message 3's (msg3) or 4's plaintext and the
// payload after it goes encrypted: all of it, unless the message makes
// plaintext the method; then the payload after the IA or PadD is sent as
// it is.
func encryptedLen(plain []byte, msg3 bool) int {
	if len(plain) < mseVCLen+6 {
		return len(plain)
	}
	method := binary.BigEndian.Uint32(plain[mseVCLen:])
	n := mseVCLen + 6 + int(binary.BigEndian.Uint16(plain[mseVCLen+4:]))
	if msg3 {
		if method&cryptoRC4 != 0 || method&cryptoPlain == 0 || n+2 > len(plain) {
			return len(plain)
		}
		n += 2 + int(binary.BigEndian.Uint16(plain[n:]))
	} else if method != cryptoPlain {
		return len(plain)
	}
	return min(n, len(plain))
}

// mseRun gives data to a stack set up as FuzzMSE's mode says, chunk bytes
// at a time, and returns the stack's end.
func mseRun(t *testing.T, mode byte, data []byte, chunk int) *end {
	var e *end
	var pre []byte
	switch mode {
	case 0, 2:
		e = &end{inbound: true}
		e.st.cipher.answer(EncryptionPrefer, testLookup, testRand(2))
	default:
		e = &end{}
		if err := e.st.cipher.dial(true, EncryptionPrefer, testSKey, testRand(1)); err != nil {
			t.Fatal(err)
		}
		e.queued = [][]byte{wire.AppendHandshake(nil, testPeerHS)}
		e.flush()
	}
	switch mode {
	case 2:
		// Our own initiator's Ya, the stack's Yb back, then req1 and the
		// torrent's hash for message 3, as any initiator writes them.
		a, _ := newMSEInitiator(testSKey, cryptoRC4|cryptoPlain, testRand(1))
		ya := a.takeOut()[:mseKeyLen]
		e.arrive(ya, len(ya))
		e.flush()
		if _, err := a.feed(e.take()[:mseKeyLen]); err != nil {
			t.Fatal(err)
		}
		pre = message3(a, nil)
		enc := mseCipher("keyA", a.secret[:], testSKey[:])
		data = append([]byte(nil), data...)
		k := encryptedLen(data, true)
		enc.XORKeyStream(data[:k], data[:k])
	case 3:
		b := newMSEReceiver(cryptoRC4|cryptoPlain, testLookup, testRand(2))
		if _, err := b.feed(e.take()[:mseKeyLen]); err != nil {
			t.Fatal(err)
		}
		pad := 0
		if len(data) > 0 {
			pad, data = int(data[0]), data[1:]
		}
		pre = append(message4(b, pad, nil), data...)
		enc := mseCipher("keyB", b.secret[:], testSKey[:])
		tail := pre[len(pre)-len(data):]
		k := encryptedLen(tail, false)
		enc.XORKeyStream(tail[:k], tail[:k])
		data, pre = pre, nil
	}
	e.arrive(pre, len(pre)+1)
	e.arrive(data, chunk)
	return e
}
