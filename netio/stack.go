package netio

import "gotorrentserver/engine/wire"

// stack is one connection's protocol stages, bottom up: the cipher stage
// (plaintext, or MSE then RC4 or plaintext: cipher.go), the handshake, the
// framing. Stages work on what the transport holds (source) and on send
// iovecs, never on a socket, so they are tested by feeding bytes. Owned by
// the connection's loop goroutine; hs.done is also read by the handshake
// timer.
type stack struct {
	hs     handshaker
	cipher cipherStage
	frames framer
}

// handshakeHandler decides about a handshake the stack read: the torrent's
// frame bound, or why the connection must close.
type handshakeHandler interface {
	handshook(hs wire.Handshake) (maxFrame int, err error)
}

// input runs what src holds through the inbound stages: the cipher, the
// handshake (h decides about it), then up to limit frames. more and err
// are as for framer.read; nothing decoded and no error means wait for
// bytes. The cipher stage may leave bytes to send (pending): the caller
// then flushes.
func (st *stack) input(src source, limit int, h handshakeHandler) (msgs []wire.Message, more bool, err error) {
	src, err = st.cipher.recv(src)
	if err != nil {
		return nil, false, err
	}
	defer st.cipher.endTurn()
	if !st.hs.done.Load() {
		hs, ok, err := st.hs.read(src)
		if !ok {
			return nil, false, err
		}
		if st.cipher.keyed && hs.InfoHash != st.cipher.skey {
			return nil, false, errMSEWrongTorrent
		}
		if st.frames.max, err = h.handshook(hs); err != nil {
			return nil, false, err
		}
	}
	return st.frames.read(src, limit)
}

// output writes a send iovec through the outbound stages to w; the
// buffers are free again when it returns.
func (st *stack) output(bufs [][]byte, w writer) error { return st.cipher.send(bufs, w) }

// held is what the stages keep of received bytes, beyond the transport.
func (st *stack) held() int { return st.cipher.held() }
