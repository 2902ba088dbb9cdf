package netio

import (
	"fmt"
	"sync/atomic"

	"gotorrentserver/engine/wire"
)

// handshaker is the handshake stage: it takes the peer's 68 bytes once and
// reports what they said (infohash, peer id, reserved bits) or why they
// are no handshake. Whether that torrent is ours is for the connection to
// decide. Owned by the connection's loop; done is also read by the
// handshake timer.
type handshaker struct {
	done atomic.Bool
}

// read waits for a whole handshake (ok false until then), consumes it and
// parses it. A bad one is an error: the connection closes.
func (h *handshaker) read(src source) (hs wire.Handshake, ok bool, err error) {
	buf := src.Peek(wire.HandshakeLen)
	if buf == nil {
		return hs, false, nil
	}
	hs, err = wire.ParseHandshake(buf)
	src.Discard(wire.HandshakeLen)
	if err != nil {
		return hs, false, fmt.Errorf("netio: handshake: %w", err)
	}
	h.done.Store(true)
	return hs, true, nil
}

// greeting is our side of the handshake.
func greeting(hs wire.Handshake) []byte {
	return wire.AppendHandshake(make([]byte, 0, wire.HandshakeLen), hs)
}
