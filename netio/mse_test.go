package netio

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
)

// testRand is a deterministic key and padding source, so that a failing
// case replays.
func testRand(seed uint64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mrand.NewChaCha8(s)
}

var testSKey = testPeerHS.InfoHash

// testLookup knows testSKey only.
func testLookup(req2 [20]byte) ([20]byte, bool) {
	if req2 == engine.ObfuscatedHash(testSKey) {
		return testSKey, true
	}
	return [20]byte{}, false
}

// shakePair runs an initiator and a receiver against each other, handing
// over chunk bytes at a time; it returns both and the first error.
func shakePair(t *testing.T, provide, accept uint32, ia []byte, chunk int) (a, b *mseShake, err error) {
	t.Helper()
	a, err = newMSEInitiator(testSKey, provide, testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	a.queue(ia)
	b = newMSEReceiver(accept, testLookup, testRand(2))
	// Each side is offered what arrived so far, growing chunk bytes at a
	// time, until neither has anything more to send or take.
	var toB, toA []byte
	var offerB, offerA int
	for {
		toB = append(toB, a.takeOut()...)
		toA = append(toA, b.takeOut()...)
		if offerB >= len(toB) && offerA >= len(toA) {
			return a, b, nil
		}
		for _, side := range []struct {
			m     *mseShake
			in    *[]byte
			offer *int
		}{{b, &toB, &offerB}, {a, &toA, &offerA}} {
			*side.offer = min(*side.offer+chunk, len(*side.in))
			n, err := side.m.feed((*side.in)[:*side.offer])
			if err != nil {
				return a, b, err
			}
			*side.in, *side.offer = (*side.in)[n:], *side.offer-n
		}
	}
}

// Both sides agree on the method the receiver picks from what the
// initiator offers (RC4 whenever both may), their RC4 streams pair up, and
// the initiator's initial payload arrives; however the bytes are cut.
func TestMSEShakeSelects(t *testing.T) {
	ia := wire.AppendHandshake(nil, testPeerHS)
	for _, tc := range []struct {
		provide, accept, want uint32
	}{
		{cryptoPlain | cryptoRC4, cryptoPlain | cryptoRC4, cryptoRC4},
		{cryptoRC4, cryptoPlain | cryptoRC4, cryptoRC4},
		{cryptoPlain, cryptoPlain | cryptoRC4, cryptoPlain},
		{cryptoPlain | cryptoRC4, cryptoRC4, cryptoRC4},
		{cryptoPlain | cryptoRC4 | 0xf0, cryptoPlain, cryptoPlain}, // unknown bits ignored
	} {
		for _, chunk := range []int{1, 7, 96, 100, 1 << 20} {
			a, b, err := shakePair(t, tc.provide, tc.accept, ia, chunk)
			if err != nil {
				t.Fatalf("provide %d accept %d chunk %d: %v", tc.provide, tc.accept, chunk, err)
			}
			if !a.done() || !b.done() || a.selected != tc.want || b.selected != tc.want {
				t.Fatalf("provide %d accept %d: done %v/%v, selected %d/%d, want %d",
					tc.provide, tc.accept, a.done(), b.done(), a.selected, b.selected, tc.want)
			}
			if !bytes.Equal(b.ia, ia) || len(a.stash) != 0 {
				t.Fatalf("IA %q, stash left %d", b.ia, len(a.stash))
			}
			if b.skey != testSKey {
				t.Fatal("receiver found another torrent")
			}
			// The streams continue where the handshake left them.
			msg := []byte("payload after the handshake")
			x := append([]byte(nil), msg...)
			a.enc.XORKeyStream(x, x)
			b.dec.XORKeyStream(x, x)
			y := append([]byte(nil), msg...)
			b.enc.XORKeyStream(y, y)
			a.dec.XORKeyStream(y, y)
			if !bytes.Equal(x, msg) || !bytes.Equal(y, msg) {
				t.Fatal("RC4 streams do not pair up")
			}
		}
	}
}

// No method in common, or a torrent the receiver lacks, fails the
// handshake on the receiver's side.
func TestMSEShakeRefusals(t *testing.T) {
	if _, _, err := shakePair(t, cryptoPlain, cryptoRC4, nil, 1<<20); !errors.Is(err, errMSENoMethod) {
		t.Fatalf("plain offered, RC4 required: %v", err)
	}
	a, _ := newMSEInitiator([20]byte{9}, cryptoRC4, testRand(1))
	b := newMSEReceiver(cryptoRC4, testLookup, testRand(2))
	if _, err := b.feed(a.takeOut()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.feed(b.takeOut()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.feed(a.takeOut()); !errors.Is(err, errMSEUnknown) {
		t.Fatalf("unknown torrent: %v", err)
	}
}

// A public key of 0, 1, P-1 or beyond P is refused.
func TestMSEBadPublicKey(t *testing.T) {
	for _, y := range []*big.Int{big.NewInt(0), big.NewInt(1), msePMinus1, mseP, new(big.Int).Lsh(big.NewInt(1), 8*mseKeyLen-1)} {
		if y.BitLen() == 8*mseKeyLen && y.Cmp(mseP) < 0 {
			y = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 8*mseKeyLen), big.NewInt(1)) // all ones, past P
		}
		b := newMSEReceiver(cryptoRC4, testLookup, testRand(2))
		if _, err := b.feed(y.FillBytes(make([]byte, mseKeyLen))); !errors.Is(err, errMSEBadKey) {
			t.Fatalf("Y=%x...: %v", y.Bytes()[:4], err)
		}
	}
}

// message3 builds an initiator's message 3 from its plaintext part (VC,
// crypto_provide, len(PadC), PadC, len(IA), IA, payload...) for the
// receiver whose Yb the initiator a has taken.
func message3(a *mseShake, plain []byte) []byte {
	req3 := mseHash("req3", a.secret[:])
	req2 := engine.ObfuscatedHash(a.skey)
	out := mseHash("req1", a.secret[:])
	for i := range req2 {
		out = append(out, req2[i]^req3[i])
	}
	enc := mseCipher("keyA", a.secret[:], a.skey[:])
	start := len(out)
	out = append(out, plain...)
	enc.XORKeyStream(out[start:], out[start:])
	return out
}

// header3 is message 3's plaintext: VC, provide, PadC, IA.
func header3(provide uint32, padC int, ia []byte) []byte {
	b := make([]byte, mseVCLen)
	b = binary.BigEndian.AppendUint32(b, provide)
	b = binary.BigEndian.AppendUint16(b, uint16(padC))
	b = append(b, make([]byte, padC)...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ia)))
	return append(b, ia...)
}

// receiverAfterYb has an initiator (testRand) and a receiver exchange
// keys: it returns the receiver waiting for message 3 and the initiator,
// whose own message 3 is dropped so the test can write its own.
func receiverAfterYb(t *testing.T, accept uint32, padA int) (a, b *mseShake) {
	t.Helper()
	a, _ = newMSEInitiator(testSKey, cryptoRC4|cryptoPlain, testRand(1))
	ya := a.takeOut()[:mseKeyLen]
	b = newMSEReceiver(accept, testLookup, testRand(2))
	if _, err := b.feed(ya); err != nil {
		t.Fatal(err)
	}
	if _, err := a.feed(b.takeOut()[:mseKeyLen]); err != nil {
		t.Fatal(err)
	}
	a.takeOut()
	if _, err := b.feed(make([]byte, padA)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Padding is bounded: PadA (found by the sync search for req1) and PadC up
// to 512 bytes pass, one more fails.
func TestMSEReceiverPadBounds(t *testing.T) {
	for _, pad := range []int{0, 511, 512, 513} {
		a, b := receiverAfterYb(t, cryptoRC4, 0)
		msg := append(make([]byte, pad), message3(a, header3(cryptoRC4, 0, nil))...)
		_, err := b.feed(msg)
		if pad <= mseMaxPad && (err != nil || !b.done()) {
			t.Fatalf("PadA %d: err %v, done %v", pad, err, b.done())
		}
		if pad > mseMaxPad && !errors.Is(err, errMSENoSync) {
			t.Fatalf("PadA %d: %v", pad, err)
		}
	}
	// A receiver fed garbage fails once the window has passed, not before.
	_, b := receiverAfterYb(t, cryptoRC4, 0)
	junk := bytes.Repeat([]byte{0x5a}, mseReq1Window)
	if n, err := b.feed(junk[:mseReq1Window-1]); n != 0 || err != nil {
		t.Fatalf("short of the window: consumed %d, %v", n, err)
	}
	if _, err := b.feed(junk); !errors.Is(err, errMSENoSync) {
		t.Fatalf("past the window: %v", err)
	}
	for _, pad := range []int{0, 512, 513} {
		a, b := receiverAfterYb(t, cryptoRC4, 0)
		_, err := b.feed(message3(a, header3(cryptoRC4, pad, []byte("ia"))))
		if pad <= mseMaxPad && (err != nil || !b.done() || string(b.ia) != "ia") {
			t.Fatalf("PadC %d: err %v, done %v, IA %q", pad, err, b.done(), b.ia)
		}
		if pad > mseMaxPad && !errors.Is(err, errMSEPadTooLong) {
			t.Fatalf("PadC %d: %v", pad, err)
		}
	}
	a, b := receiverAfterYb(t, cryptoRC4, 0)
	bad := header3(cryptoRC4, 0, nil)
	bad[3] = 1
	if _, err := b.feed(message3(a, bad)); !errors.Is(err, errMSEBadVC) {
		t.Fatalf("nonzero VC: %v", err)
	}
}

// initiatorAfterYa has the initiator send Ya and a receiver answer: it
// returns the initiator waiting for Yb and the receiver, whose key the
// test then sends with a pad and message 4 of its own making.
func initiatorAfterYa(t *testing.T) (a, b *mseShake) {
	t.Helper()
	a, _ = newMSEInitiator(testSKey, cryptoRC4|cryptoPlain, testRand(1))
	b = newMSEReceiver(cryptoRC4|cryptoPlain, testLookup, testRand(2))
	if _, err := b.feed(a.takeOut()[:mseKeyLen]); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// message4 is Yb, padB zero bytes, then the plaintext (VC, crypto_select,
// len(PadD), PadD, payload...) encrypted with keyB.
func message4(b *mseShake, padB int, plain []byte) []byte {
	out := append(b.takeOut()[:mseKeyLen:mseKeyLen], make([]byte, padB)...)
	enc := mseCipher("keyB", b.secret[:], testSKey[:])
	start := len(out)
	out = append(out, plain...)
	enc.XORKeyStream(out[start:], out[start:])
	return out
}

func header4(sel uint32, padD int) []byte {
	h := make([]byte, mseVCLen)
	h = binary.BigEndian.AppendUint32(h, sel)
	h = binary.BigEndian.AppendUint16(h, uint16(padD))
	return append(h, make([]byte, padD)...)
}

// The initiator's bounds: PadB up to 512 before the VC, PadD up to 512,
// and a selection it offered, exactly one method.
func TestMSEInitiatorBounds(t *testing.T) {
	for _, tc := range []struct {
		padB, padD int
		sel        uint32
		want       error
	}{
		{0, 0, cryptoRC4, nil},
		{512, 512, cryptoPlain, nil},
		{513, 0, cryptoRC4, errMSENoSync},
		{0, 513, cryptoRC4, errMSEPadTooLong},
		{0, 0, cryptoRC4 | cryptoPlain, errMSEBadSelect},
		{0, 0, 0, errMSEBadSelect},
		{0, 0, 4, errMSEBadSelect},
	} {
		a, b := initiatorAfterYa(t)
		msg := message4(b, tc.padB, header4(tc.sel, tc.padD))
		_, err := a.feed(msg)
		if !errors.Is(err, tc.want) || (tc.want == nil && (!a.done() || a.selected != tc.sel)) {
			t.Fatalf("%+v: err %v, done %v, selected %d", tc, err, a.done(), a.selected)
		}
	}
	// An initiator that offered RC4 only refuses plaintext.
	a, _ := newMSEInitiator(testSKey, cryptoRC4, testRand(1))
	b := newMSEReceiver(cryptoRC4|cryptoPlain, testLookup, testRand(2))
	b.feed(a.takeOut()[:mseKeyLen])
	if _, err := a.feed(message4(b, 0, header4(cryptoPlain, 0))); !errors.Is(err, errMSEBadSelect) {
		t.Fatalf("plaintext selected though not offered: %v", err)
	}
}

// An initial payload longer than len(IA) can say goes out in part as IA,
// the rest after the handshake, in order.
func TestMSELongInitialPayload(t *testing.T) {
	ia := bytes.Repeat([]byte("0123456789"), 7000)
	a, b, err := shakePair(t, cryptoRC4, cryptoRC4, ia, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.ia) != 0xffff || !bytes.Equal(b.ia, ia[:0xffff]) || !bytes.Equal(a.stash, ia[0xffff:]) {
		t.Fatalf("IA %d bytes, %d left", len(b.ia), len(a.stash))
	}
}

func TestParseEncryption(t *testing.T) {
	for _, e := range []Encryption{EncryptionPrefer, EncryptionRequire, EncryptionDisable} {
		if got, err := ParseEncryption(e.String()); err != nil || got != e {
			t.Fatalf("%v: %v, %v", e, got, err)
		}
	}
	if _, err := ParseEncryption("on"); err == nil {
		t.Fatal("accepted on")
	}
}

// BenchmarkMSEHandshake is one whole handshake, both sides: two key pairs
// and two secrets, the DH work a connection costs us twice over.
func BenchmarkMSEHandshake(b *testing.B) {
	ia := wire.AppendHandshake(nil, testPeerHS)
	for b.Loop() {
		x, _ := newMSEInitiator(testSKey, cryptoRC4, testRand(1))
		x.queue(ia)
		y := newMSEReceiver(cryptoRC4, testLookup, testRand(2))
		y.feed(x.takeOut())
		x.feed(y.takeOut())
		y.feed(x.takeOut())
		x.feed(y.takeOut())
		if !x.done() || !y.done() {
			b.Fatal("handshake did not finish")
		}
	}
}

// BenchmarkMSEModExp is one 768-bit exponentiation with a 160-bit
// exponent: a connection costs two on our side.
func BenchmarkMSEModExp(b *testing.B) {
	x := new(big.Int).SetBytes(sha1.New().Sum(nil))
	y := new(big.Int)
	for b.Loop() {
		y.Exp(mseG, x, mseP)
	}
}
