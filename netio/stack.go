package netio

import "gotorrentserver/engine/wire"

// stack is one connection's protocol stages, bottom up: a cipher slot
// (plain for now), the handshake, the framing. Stages work on what the
// transport holds (source) and on send iovecs, never on a socket, so they
// are tested by feeding bytes. Owned by the connection's loop goroutine;
// hs.done is also read by the handshake timer.
//
// An encryption stage (BEP-less MSE/PE, RC4) replaces plain: it decrypts
// each received byte once, in place, before the handshake and framing
// peek at it, and encrypts the send iovec just before Writev (in place
// for buffers the connection owns; a read-cache view is shared with other
// readers, so that one it would encrypt into a scratch buffer).
type stack struct {
	hs     handshaker
	cipher plain
	frames framer
}

// plain is the identity cipher stage.
type plain struct{}

func (plain) recv(src source) source      { return src }
func (plain) send(bufs [][]byte) [][]byte { return bufs }

// handshakeHandler decides about a handshake the stack read: the torrent's
// frame bound, or why the connection must close.
type handshakeHandler interface {
	handshook(hs wire.Handshake) (maxFrame int, err error)
}

// input runs what src holds through the inbound stages: the handshake
// first (h decides about it), then up to limit frames. more and err are
// as for framer.read; nothing decoded and no error means wait for bytes.
func (st *stack) input(src source, limit int, h handshakeHandler) (msgs []wire.Message, more bool, err error) {
	src = st.cipher.recv(src)
	if !st.hs.done.Load() {
		hs, ok, err := st.hs.read(src)
		if !ok {
			return nil, false, err
		}
		if st.frames.max, err = h.handshook(hs); err != nil {
			return nil, false, err
		}
	}
	return st.frames.read(src, limit)
}

// output runs a send iovec through the outbound stages.
func (st *stack) output(bufs [][]byte) [][]byte { return st.cipher.send(bufs) }
