package netio

import (
	"bytes"
	"crypto/rc4"
	"io"
	"sync"
)

// cipherStage is the stack's bottom stage: plaintext, or MSE (mse.go) and
// then RC4 or plaintext as the two sides agreed. Its zero value is
// plaintext, and a connection that is plaintext for good holds no more
// than mode and skey: the rest lives in x, only while needed. Owned by the
// connection's loop.
//
// Receiving, RC4 decrypts each byte once, as it leaves the transport, into
// rx, which the upper stages then read; gnet hands a pooled copy where its
// ring buffer wraps, so decrypting in the transport's own buffer would not
// stick. The XOR writes into rx at the cost of decrypting in place, and rx
// keeps only what the upper stages left (a partial frame, as gnet's ring
// would) between turns.
//
// Sending, RC4 encrypts into a pooled scratch buffer just before Writev:
// buffers queued by the session may be shared (one have message goes to
// every peer, a block may be a view into the read cache), so none is
// encrypted in place.
type cipherStage struct {
	mode uint8
	// keyed: the MSE handshake named the torrent skey, and the BitTorrent
	// handshake must name the same one.
	keyed bool
	skey  [20]byte
	x     *cipherState
}

// cipherState is the stage's state beyond plaintext.
type cipherState struct {
	policy   Encryption
	lookup   func([20]byte) ([20]byte, bool)
	rand     io.Reader
	shake    *mseShake
	enc, dec *rc4.Cipher
	raw      []byte // ready to send ahead of everything: MSE messages, the flushed stash
	stash    []byte // inbound, undecided: what was sent before it is known how to send it
	rx       rxBuf
	join     joinSource
	empty    rxBuf // the source while waiting for the handshake's bytes
	iov      [1][]byte
}

const (
	cipherPlain     uint8 = iota // the transport read and written as is
	cipherDetect                 // inbound: plaintext or MSE, decided by the first bytes
	cipherShake                  // the MSE handshake runs
	cipherRC4                    // RC4 both ways
	cipherPlainTail              // plaintext agreed over MSE; rx (the IA) is read first
)

// dial sets the stage up for an outbound connection to the torrent skey:
// MSE unless plaintext is asked for. Our Ya goes out with the first write.
func (c *cipherStage) dial(encrypt bool, policy Encryption, skey [20]byte, rnd io.Reader) error {
	if !encrypt {
		return nil
	}
	m, err := newMSEInitiator(skey, policy.methods(), rnd)
	if err != nil {
		return err
	}
	c.mode = cipherShake
	c.x = &cipherState{policy: policy, shake: m, rand: rnd, raw: m.takeOut()}
	return nil
}

// answer sets the stage up for an inbound connection: its first bytes tell
// plaintext from MSE, unless the policy disables MSE (then an MSE peer's
// bytes are just no BitTorrent handshake).
func (c *cipherStage) answer(policy Encryption, lookup func([20]byte) ([20]byte, bool), rnd io.Reader) {
	if policy == EncryptionDisable {
		return
	}
	c.mode = cipherDetect
	c.x = &cipherState{policy: policy, lookup: lookup, rand: rnd}
}

// negotiating tells whether the MSE handshake is under way: a peer that
// hangs up now may not speak it.
func (c *cipherStage) negotiating() bool { return c.mode == cipherShake }

// pending tells whether bytes wait to be sent even with nothing queued.
func (c *cipherStage) pending() bool { return c.x != nil && len(c.x.raw) > 0 }

// held is what the stage keeps of the peer's bytes, for the inbound bound.
func (c *cipherStage) held() int {
	if c.x == nil {
		return 0
	}
	return c.x.rx.Buffered()
}

// plain makes the stage plaintext for good, dropping its state once
// nothing is left to send or read through it.
func (c *cipherStage) plain() {
	c.mode = cipherPlain
	if x := c.x; x != nil && len(x.raw) == 0 && x.rx.Buffered() == 0 {
		x.rx.release()
		c.x = nil
	}
}

// recv returns what the upper stages read this turn.
func (c *cipherStage) recv(src source) (source, error) {
	for {
		x := c.x
		switch c.mode {
		case cipherPlain:
			return src, nil
		case cipherDetect:
			n := min(src.Buffered(), len(mseProtocol))
			if b := src.Peek(n); !bytes.Equal(b, mseProtocol[:n]) {
				x.shake = newMSEReceiver(x.policy.methods(), x.lookup, x.rand)
				x.shake.queue(x.stash)
				x.stash, c.mode = nil, cipherShake
				continue
			}
			if n < len(mseProtocol) {
				return &x.empty, nil
			}
			if x.policy == EncryptionRequire {
				return nil, errPlaintextRefused
			}
			x.raw = append(x.raw, x.stash...)
			x.stash = nil
			c.plain()
		case cipherShake:
			n, err := x.shake.feed(src.Peek(src.Buffered()))
			src.Discard(n)
			x.raw = append(x.raw, x.shake.takeOut()...)
			if err != nil {
				return nil, err
			}
			if !x.shake.done() {
				return &x.empty, nil
			}
			c.agreed()
		case cipherRC4:
			if n := src.Buffered(); n > 0 {
				x.dec.XORKeyStream(x.rx.tail(n), src.Peek(n))
				src.Discard(n)
			}
			return &x.rx, nil
		case cipherPlainTail:
			if x.rx.Buffered() == 0 {
				c.plain()
				continue
			}
			x.join.first, x.join.next = &x.rx, src
			return &x.join, nil
		}
	}
}

// agreed ends the MSE handshake: the IA is the first payload received,
// and what was sent meanwhile goes out as the agreed method has it.
func (c *cipherStage) agreed() {
	x := c.x
	m := x.shake
	x.shake = nil
	c.skey, c.keyed = m.skey, true
	copy(x.rx.tail(len(m.ia)), m.ia)
	if m.selected == cryptoRC4 {
		x.enc, x.dec, c.mode = m.enc, m.dec, cipherRC4
		start := len(x.raw)
		x.raw = append(x.raw, m.stash...)
		x.enc.XORKeyStream(x.raw[start:], x.raw[start:])
		return
	}
	x.raw = append(x.raw, m.stash...)
	c.mode = cipherPlainTail
}

// endTurn runs after the upper stages read a turn's bytes.
func (c *cipherStage) endTurn() {
	if x := c.x; x != nil {
		x.join.asm = nil
		x.rx.settle()
	}
}

// send writes bufs through the stage: held back while undecided, encrypted
// under RC4, as they are otherwise; the stage's own bytes go first.
func (c *cipherStage) send(bufs [][]byte, w writer) error {
	x := c.x
	if x == nil {
		if len(bufs) == 0 {
			return nil
		}
		return w.Writev(bufs)
	}
	switch c.mode {
	case cipherDetect:
		for _, b := range bufs {
			x.stash = append(x.stash, b...)
		}
		return nil
	case cipherShake:
		for _, b := range bufs {
			x.shake.queue(b)
		}
		x.raw = append(x.raw, x.shake.takeOut()...)
		return x.sendRaw(w)
	case cipherRC4:
		if err := x.sendRaw(w); err != nil {
			return err
		}
		return x.encrypt(bufs, w)
	}
	err := x.sendRaw(w)
	if c.mode == cipherPlain {
		c.plain()
	}
	if err != nil || len(bufs) == 0 {
		return err
	}
	return w.Writev(bufs)
}

func (x *cipherState) sendRaw(w writer) error {
	if len(x.raw) == 0 {
		return nil
	}
	x.iov[0] = x.raw
	x.raw = nil
	err := w.Writev(x.iov[:])
	x.iov[0] = nil
	return err
}

// encryptChunk is the scratch buffer's size: one writev per chunk.
const encryptChunk = 256 << 10

var encryptPool = sync.Pool{New: func() any {
	b := make([]byte, encryptChunk)
	return &b
}}

// encrypt writes bufs encrypted, through a scratch buffer a chunk at a
// time. The transport has written or copied each chunk when Writev
// returns, so the scratch is free again at once.
func (x *cipherState) encrypt(bufs [][]byte, w writer) error {
	p := encryptPool.Get().(*[]byte)
	defer encryptPool.Put(p)
	s := (*p)[:0]
	for _, b := range bufs {
		for len(b) > 0 {
			k := min(len(b), cap(s)-len(s))
			x.enc.XORKeyStream(s[len(s):len(s)+k], b[:k])
			s, b = s[:len(s)+k], b[k:]
			if len(s) == cap(s) {
				x.iov[0] = s
				if err := w.Writev(x.iov[:]); err != nil {
					x.iov[0] = nil
					return err
				}
				s = s[:0]
			}
		}
	}
	var err error
	if len(s) > 0 {
		x.iov[0] = s
		err = w.Writev(x.iov[:])
	}
	x.iov[0] = nil
	return err
}

// writer is where the send side of the stack ends: the transport.
type writer interface {
	Writev(bufs [][]byte) error
}

// rxBuf is received bytes the stage decrypted and the upper stages have
// not consumed: b[off:]. Its buffers come from pools, so a connection that
// is idle or consumed everything holds none. A source.
type rxBuf struct {
	b   []byte
	off int
}

// rx buffer size classes: small holds a partial frame between turns, large
// a whole read of gnet's (256 KiB) with such a remainder before it.
const (
	rxSmall = 32 << 10
	rxLarge = 320 << 10
)

var (
	rxSmallPool = sync.Pool{New: func() any { b := make([]byte, rxSmall); return &b }}
	rxLargePool = sync.Pool{New: func() any { b := make([]byte, rxLarge); return &b }}
)

func getRx(n int) []byte {
	switch {
	case n <= rxSmall:
		return (*rxSmallPool.Get().(*[]byte))[:0]
	case n <= rxLarge:
		return (*rxLargePool.Get().(*[]byte))[:0]
	}
	return make([]byte, 0, n)
}

func putRx(b []byte) {
	switch cap(b) {
	case rxSmall:
		b = b[:rxSmall]
		rxSmallPool.Put(&b)
	case rxLarge:
		b = b[:rxLarge]
		rxLargePool.Put(&b)
	}
}

func (r *rxBuf) Buffered() int { return len(r.b) - r.off }

func (r *rxBuf) Peek(n int) []byte {
	if n > r.Buffered() {
		return nil
	}
	return r.b[r.off : r.off+n : r.off+n]
}

func (r *rxBuf) Discard(n int) { r.off += min(n, r.Buffered()) }

// tail makes room for n more bytes and returns it, for the caller to fill.
// What is live moves only when that frees at least as much as it moves, or
// into a buffer twice the size, so a peer trickling bytes behind a long
// backlog costs amortised O(1) a byte.
func (r *rxBuf) tail(n int) []byte {
	live := r.Buffered()
	if cap(r.b)-len(r.b) < n {
		if r.off >= live && cap(r.b)-live >= n {
			copy(r.b, r.b[r.off:])
		} else {
			nb := getRx(max(2*live, live+n))
			nb = append(nb, r.b[r.off:]...)
			putRx(r.b)
			r.b = nb
		}
		r.b, r.off = r.b[:live], 0
	}
	r.b = r.b[:len(r.b)+n]
	return r.b[len(r.b)-n:]
}

// settle runs at the end of a turn: an empty buffer goes back to its pool,
// and a small remainder moves out of a large buffer, so that between turns
// a connection holds about what gnet's own ring would.
func (r *rxBuf) settle() {
	switch live := r.Buffered(); {
	case live == 0:
		r.release()
	case cap(r.b) > rxSmall && live <= rxSmall/2:
		nb := append(getRx(live), r.b[r.off:]...)
		putRx(r.b)
		r.b, r.off = nb, 0
	}
}

func (r *rxBuf) release() {
	if r.b != nil {
		putRx(r.b)
	}
	r.b, r.off = nil, 0
}

// joinSource reads first, then next: the IA received over MSE, then the
// plaintext that follows it in the transport. A Peek across the two is
// assembled in asm.
type joinSource struct {
	first *rxBuf
	next  source
	asm   []byte
}

func (j *joinSource) Buffered() int { return j.first.Buffered() + j.next.Buffered() }

func (j *joinSource) Peek(n int) []byte {
	k := j.first.Buffered()
	if n <= k {
		return j.first.Peek(n)
	}
	if k == 0 {
		return j.next.Peek(n)
	}
	rest := j.next.Peek(n - k)
	if rest == nil {
		return nil
	}
	j.asm = append(append(j.asm[:0], j.first.Peek(k)...), rest...)
	return j.asm
}

func (j *joinSource) Discard(n int) {
	k := min(n, j.first.Buffered())
	j.first.Discard(k)
	if n > k {
		j.next.Discard(n - k)
	}
}
