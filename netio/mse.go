package netio

import (
	"bytes"
	"crypto/rc4"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"gotorrentserver/engine"
)

// Message Stream Encryption (MSE, also called Protocol Encryption), as
// libtorrent, Transmission, Vuze and aria2 speak it. It has no BEP; this
// follows the specification those clients implement:
//
//	1 A->B: Ya, PadA
//	2 B->A: Yb, PadB
//	3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//	        ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//	4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//	5 A->B: ENCRYPT2(payload)
//
// Y is a 768-bit Diffie-Hellman public key, S the shared secret (both 96
// bytes, big-endian), SKEY the infohash, HASH SHA-1, VC eight zero bytes,
// ENCRYPT RC4 keyed with HASH('keyA'|'keyB', S, SKEY) after discarding its
// first 1024 bytes, pads at most 512 bytes. ENCRYPT2 is that RC4 stream
// continued, or nothing if crypto_select chose plaintext. IA, the
// initiator's first payload bytes (its BitTorrent handshake), saves a
// round trip.

// Encryption is the connection encryption policy.
type Encryption uint8

const (
	// EncryptionPrefer (the default) accepts plaintext and encrypted peers,
	// dials encrypted first and falls back to plaintext once per peer that
	// hangs up during the encrypted handshake.
	EncryptionPrefer Encryption = iota
	// EncryptionRequire speaks only RC4: plaintext handshakes, and MSE
	// peers offering only plaintext, are refused.
	EncryptionRequire
	// EncryptionDisable speaks only the plaintext protocol: incoming
	// encrypted handshakes are refused.
	EncryptionDisable
)

func (e Encryption) String() string {
	switch e {
	case EncryptionPrefer:
		return "prefer"
	case EncryptionRequire:
		return "require"
	case EncryptionDisable:
		return "disable"
	}
	return fmt.Sprintf("Encryption(%d)", uint8(e))
}

// ParseEncryption reads prefer, require or disable.
func ParseEncryption(s string) (Encryption, error) {
	for _, e := range []Encryption{EncryptionPrefer, EncryptionRequire, EncryptionDisable} {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("netio: encryption %q: want prefer, require or disable", s)
}

// crypto_provide and crypto_select bits.
const (
	cryptoPlain uint32 = 1
	cryptoRC4   uint32 = 2
)

// methods is what the policy offers (dialing) or accepts (answering).
func (e Encryption) methods() uint32 {
	if e == EncryptionRequire {
		return cryptoRC4
	}
	return cryptoPlain | cryptoRC4
}

const (
	mseKeyLen = 96  // a public key or the shared secret, big-endian
	mseMaxPad = 512 // any of PadA..PadD
	mseVCLen  = 8
	// mseReq1Window is how far the receiver looks for HASH('req1', S)
	// after Ya: PadA, then the hash. Past it the peer is not speaking MSE.
	mseReq1Window = mseMaxPad + sha1.Size
	// mseVCWindow is how far the initiator looks for ENCRYPT(VC) after Yb.
	mseVCWindow = mseMaxPad + mseVCLen
	// msePrivLen is the private exponent's length: 160 bits, what the
	// specification recommends; longer ones only cost time.
	msePrivLen = 20
)

var (
	mseP = func() *big.Int {
		p, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
			"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
			"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
			"E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)
		return p
	}()
	mseG        = big.NewInt(2)
	msePMinus1  = new(big.Int).Sub(mseP, big.NewInt(1))
	mseProtocol = []byte("\x13BitTorrent protocol")
)

var (
	errMSENoSync        = errors.New("netio: mse: no synchronisation marker within the padding bound")
	errMSEBadKey        = errors.New("netio: mse: public key out of range")
	errMSEBadVC         = errors.New("netio: mse: verification constant is not zero")
	errMSEPadTooLong    = errors.New("netio: mse: padding over 512 bytes")
	errMSEUnknown       = errors.New("netio: mse: handshake for a torrent we do not have")
	errMSENoMethod      = errors.New("netio: mse: no encryption method in common")
	errMSEBadSelect     = errors.New("netio: mse: peer selected a method we did not offer")
	errMSEWrongTorrent  = errors.New("netio: mse: handshake names another torrent than the encrypted one")
	errPlaintextRefused = errors.New("netio: plaintext handshake refused: encryption required")
)

// mse steps.
const (
	mseWaitY      = iota // initiator: Yb; receiver: Ya
	mseSyncReq1          // receiver: PadA, then HASH('req1', S)
	mseReadReq2          // receiver: the torrent's hash, VC, crypto_provide, len(PadC)
	mseReadPadC          // receiver: PadC, len(IA)
	mseReadIA            // receiver: IA
	mseSyncVC            // initiator: PadB, then ENCRYPT(VC)
	mseReadSelect        // initiator: crypto_select, len(PadD)
	mseReadPadD          // initiator: PadD
	mseDone
)

// mseShake is one side of the MSE handshake as plain data: fed the bytes
// the peer sent, it consumes what it understood and leaves bytes to send
// in out. It never sees a socket, so it is tested and fuzzed by feeding
// bytes. Owned by the connection's loop, like the rest of the stack.
type mseShake struct {
	initiator bool
	methods   uint32 // initiator: crypto_provide; receiver: what it accepts
	// lookup finds the infohash whose HASH('req2', ·) is req2 (receiver).
	lookup func(req2 [20]byte) (skey [20]byte, ok bool)
	rand   io.Reader

	step   int
	priv   *big.Int
	secret [mseKeyLen]byte
	skey   [20]byte
	marker []byte // what the current sync step searches for
	need   int    // length of the pad (and what follows it) being read
	enc    *rc4.Cipher
	dec    *rc4.Cipher

	selected uint32 // the method agreed, once done
	out      []byte // bytes to send, in order, before anything else
	// stash is payload the connection sent before the handshake ended:
	// the initiator's first part goes out as IA, the rest once a method
	// is agreed.
	stash []byte
	ia    []byte // receiver: the peer's IA, decrypted
}

// newMSEInitiator starts a handshake for the torrent skey offering methods;
// Ya and PadA are in out at once.
func newMSEInitiator(skey [20]byte, methods uint32, rnd io.Reader) (*mseShake, error) {
	m := &mseShake{initiator: true, methods: methods, skey: skey, rand: rnd}
	if err := m.keyPair(); err != nil {
		return nil, err
	}
	return m, nil
}

// newMSEReceiver answers a handshake, accepting methods; it speaks once
// Ya has arrived.
func newMSEReceiver(methods uint32, lookup func([20]byte) ([20]byte, bool), rnd io.Reader) *mseShake {
	return &mseShake{methods: methods, lookup: lookup, rand: rnd}
}

// keyPair draws the private key and queues the public key and a pad.
func (m *mseShake) keyPair() error {
	var x [msePrivLen]byte
	if _, err := io.ReadFull(m.rand, x[:]); err != nil {
		return fmt.Errorf("netio: mse: private key: %w", err)
	}
	m.priv = new(big.Int).SetBytes(x[:])
	y := new(big.Int).Exp(mseG, m.priv, mseP)
	m.out = y.FillBytes(make([]byte, mseKeyLen, mseKeyLen+mseMaxPad))
	return m.pad()
}

// pad appends random padding of random length (0 to 512 bytes) to out:
// fixed lengths would make the handshake easy to fingerprint.
func (m *mseShake) pad() error {
	var n [2]byte
	if _, err := io.ReadFull(m.rand, n[:]); err != nil {
		return fmt.Errorf("netio: mse: padding: %w", err)
	}
	k := int(binary.BigEndian.Uint16(n[:])) % (mseMaxPad + 1)
	start := len(m.out)
	m.out = append(m.out, make([]byte, k)...)
	if _, err := io.ReadFull(m.rand, m.out[start:]); err != nil {
		return fmt.Errorf("netio: mse: padding: %w", err)
	}
	return nil
}

// done tells whether a method is agreed: what follows is payload.
func (m *mseShake) done() bool { return m.step == mseDone }

// takeOut hands over the bytes to send.
func (m *mseShake) takeOut() []byte {
	b := m.out
	m.out = nil
	return b
}

// queue keeps payload sent before the handshake ended.
func (m *mseShake) queue(b []byte) { m.stash = append(m.stash, b...) }

// feed consumes what it can of in, the peer's bytes not consumed before:
// n is how many it took, and the rest must be offered again with more.
// An error means the peer does not speak MSE as we do; close.
func (m *mseShake) feed(in []byte) (n int, err error) {
	for m.step != mseDone {
		k, ok, err := m.advance(in[n:])
		n += k
		if err != nil || !ok {
			return n, err
		}
	}
	return n, nil
}

// advance runs one step: ok false while in lacks the bytes it needs, which
// it then leaves unconsumed.
func (m *mseShake) advance(in []byte) (n int, ok bool, err error) {
	switch m.step {
	case mseWaitY:
		if len(in) < mseKeyLen {
			return 0, false, nil
		}
		return mseKeyLen, true, m.gotY(in[:mseKeyLen])
	case mseSyncReq1, mseSyncVC:
		window := mseReq1Window
		if m.step == mseSyncVC {
			window = mseVCWindow
		}
		i := bytes.Index(in[:min(len(in), window)], m.marker)
		if i < 0 {
			if len(in) >= window {
				return 0, false, errMSENoSync
			}
			return 0, false, nil
		}
		if m.step == mseSyncReq1 {
			m.step = mseReadReq2
		} else {
			m.step = mseReadSelect
		}
		return i + len(m.marker), true, nil
	case mseReadReq2:
		if len(in) < sha1.Size+mseVCLen+6 {
			return 0, false, nil
		}
		return sha1.Size + mseVCLen + 6, true, m.gotReq2(in[:sha1.Size], in[sha1.Size:sha1.Size+mseVCLen+6])
	case mseReadPadC, mseReadPadD, mseReadIA:
		if len(in) < m.need {
			return 0, false, nil
		}
		b := make([]byte, m.need)
		m.dec.XORKeyStream(b, in[:m.need])
		switch m.step {
		case mseReadPadC:
			m.need = int(binary.BigEndian.Uint16(b[len(b)-2:]))
			m.step = mseReadIA
		case mseReadIA:
			m.ia = b
			return len(b), true, m.answer()
		case mseReadPadD:
			m.step = mseDone
		}
		return len(b), true, nil
	case mseReadSelect:
		if len(in) < 6 {
			return 0, false, nil
		}
		var b [6]byte
		m.dec.XORKeyStream(b[:], in[:6])
		sel := binary.BigEndian.Uint32(b[:4])
		if (sel != cryptoPlain && sel != cryptoRC4) || sel&m.methods == 0 {
			return 6, true, errMSEBadSelect
		}
		m.selected = sel
		m.need = int(binary.BigEndian.Uint16(b[4:]))
		if m.need > mseMaxPad {
			return 6, true, errMSEPadTooLong
		}
		m.step = mseReadPadD
		return 6, true, nil
	}
	return 0, false, nil
}

// gotY takes the peer's public key: the secret follows, and the receiver
// answers with its own key while the initiator sends message 3.
func (m *mseShake) gotY(yb []byte) error {
	y := new(big.Int).SetBytes(yb)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(msePMinus1) >= 0 {
		// 0, 1 and P-1 would make the secret guessable.
		return errMSEBadKey
	}
	if !m.initiator {
		if err := m.keyPair(); err != nil {
			return err
		}
	}
	new(big.Int).Exp(y, m.priv, mseP).FillBytes(m.secret[:])
	m.priv = nil
	if !m.initiator {
		m.marker = mseHash("req1", m.secret[:])
		m.step = mseSyncReq1
		return nil
	}
	m.keys()
	req2 := engine.ObfuscatedHash(m.skey)
	req3 := mseHash("req3", m.secret[:])
	m.out = append(m.out, mseHash("req1", m.secret[:])...)
	for i := range req2 {
		m.out = append(m.out, req2[i]^req3[i])
	}
	ia := m.stash[:min(len(m.stash), 0xffff)]
	start := len(m.out)
	m.out = append(m.out, make([]byte, mseVCLen)...)
	m.out = binary.BigEndian.AppendUint32(m.out, m.methods)
	m.out = binary.BigEndian.AppendUint16(m.out, 0) // no PadC
	m.out = binary.BigEndian.AppendUint16(m.out, uint16(len(ia)))
	m.out = append(m.out, ia...)
	m.enc.XORKeyStream(m.out[start:], m.out[start:])
	m.stash = m.stash[len(ia):]
	// The receiver's VC is eight zeros encrypted: the key stream's first
	// eight bytes, which are then used up as reading the VC would.
	m.marker = make([]byte, mseVCLen)
	m.dec.XORKeyStream(m.marker, m.marker)
	m.step = mseSyncVC
	return nil
}

// gotReq2 finds the torrent, then checks VC and reads crypto_provide and
// len(PadC) (hdr, still encrypted).
func (m *mseShake) gotReq2(req2x, hdr []byte) error {
	req3 := mseHash("req3", m.secret[:])
	var req2 [20]byte
	for i := range req2 {
		req2[i] = req2x[i] ^ req3[i]
	}
	skey, ok := m.lookup(req2)
	if !ok {
		return errMSEUnknown
	}
	m.skey = skey
	m.keys()
	var b [mseVCLen + 6]byte
	m.dec.XORKeyStream(b[:], hdr)
	if !bytes.Equal(b[:mseVCLen], make([]byte, mseVCLen)) {
		return errMSEBadVC
	}
	provide := binary.BigEndian.Uint32(b[mseVCLen:])
	switch common := provide & m.methods; {
	case common&cryptoRC4 != 0:
		m.selected = cryptoRC4 // RC4 whenever both may: that is what encryption is for
	case common&cryptoPlain != 0:
		m.selected = cryptoPlain
	default:
		return errMSENoMethod
	}
	if m.need = int(binary.BigEndian.Uint16(b[mseVCLen+4:])); m.need > mseMaxPad {
		return errMSEPadTooLong
	}
	m.need += 2 // len(IA) follows PadC
	m.step = mseReadPadC
	return nil
}

// answer sends message 4: the receiver's VC and choice, no PadD.
func (m *mseShake) answer() error {
	start := len(m.out)
	m.out = append(m.out, make([]byte, mseVCLen)...)
	m.out = binary.BigEndian.AppendUint32(m.out, m.selected)
	m.out = binary.BigEndian.AppendUint16(m.out, 0)
	m.enc.XORKeyStream(m.out[start:], m.out[start:])
	m.step = mseDone
	return nil
}

// keys sets up both RC4 streams: A (the initiator) sends with keyA, B
// with keyB; the first 1024 bytes of each are discarded.
func (m *mseShake) keys() {
	a := mseCipher("keyA", m.secret[:], m.skey[:])
	b := mseCipher("keyB", m.secret[:], m.skey[:])
	if m.initiator {
		m.enc, m.dec = a, b
	} else {
		m.enc, m.dec = b, a
	}
}

func mseCipher(name string, secret, skey []byte) *rc4.Cipher {
	h := sha1.New()
	h.Write([]byte(name))
	h.Write(secret)
	h.Write(skey)
	c, _ := rc4.NewCipher(h.Sum(nil)) // 20 bytes: always a valid key
	var discard [1024]byte
	c.XORKeyStream(discard[:], discard[:])
	return c
}

func mseHash(name string, secret []byte) []byte {
	h := sha1.New()
	h.Write([]byte(name))
	h.Write(secret)
	return h.Sum(nil)
}
