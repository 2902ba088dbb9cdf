package netio

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

var errMSEStalled = errors.New("netio: mse: handshake does not end within its bounds")

// mseReadBuf is InitiateMSE's read buffer: what the handshake leaves
// unconsumed before it ends is bounded by its windows (Yb, then PadB and
// the VC, then PadD: about 1.1 KiB), so this always has room to read into.
const mseReadBuf = 4 << 10

// InitiateMSE runs the initiating side of an MSE handshake (mse.go) over
// rw for the torrent skey, offering and accepting RC4 only, as a dial under
// EncryptionRequire does, and sends ia (normally the BitTorrent handshake)
// inside it. It returns the RC4 streams for everything after it: enc for
// what the caller sends, dec for what it receives, and rest, bytes the peer
// sent after its part of the handshake that arrived with it, already
// decrypted. A peer that refuses RC4, or does not speak MSE, is an error.
//
// It is for programs that drive peer connections of their own, such as the
// benchmark swarm, which dials a daemon under test: the daemon's own
// connections run MSE inside their event loops (cipherStage). rw is read
// and written from the calling goroutine only, and the caller bounds the
// time it takes (a deadline on a net.Conn): a peer that stops talking
// blocks it in Read.
func InitiateMSE(rw io.ReadWriter, skey [20]byte, ia []byte) (enc, dec cipher.Stream, rest []byte, err error) {
	m, err := newMSEInitiator(skey, cryptoRC4, rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	m.queue(ia)
	if _, err := rw.Write(m.takeOut()); err != nil {
		return nil, nil, nil, fmt.Errorf("netio: mse: %w", err)
	}
	buf := make([]byte, 0, mseReadBuf)
	for !m.done() {
		if len(buf) == cap(buf) {
			return nil, nil, nil, errMSEStalled
		}
		n, rerr := rw.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		k, ferr := m.feed(buf)
		buf = buf[:copy(buf, buf[k:])]
		if out := m.takeOut(); len(out) > 0 {
			if _, err := rw.Write(out); err != nil {
				return nil, nil, nil, fmt.Errorf("netio: mse: %w", err)
			}
		}
		switch {
		case ferr != nil:
			return nil, nil, nil, ferr
		case rerr != nil && !m.done():
			return nil, nil, nil, fmt.Errorf("netio: mse: %w", rerr)
		}
	}
	m.dec.XORKeyStream(buf, buf)
	// An ia too long for one IA field is the first payload after it.
	if len(m.stash) > 0 {
		m.enc.XORKeyStream(m.stash, m.stash)
		if _, err := rw.Write(m.stash); err != nil {
			return nil, nil, nil, fmt.Errorf("netio: mse: %w", err)
		}
	}
	return m.enc, m.dec, buf, nil
}
