package netio

import (
	"errors"
	"fmt"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
)

// framer is the framing stage: length-prefixed frames, each checked
// against the torrent's bound before any of it is read, decoded into
// messages the session will own. Owned by the connection's loop.
type framer struct {
	// max bounds a frame, length prefix included; set by the handshake,
	// which names the torrent and so its bitfield's size.
	max int
}

// frameLen is the size of the frame b starts with, 0 while its length
// prefix is incomplete. It needs only the prefix: a frame over the bound
// is refused before its bytes arrive.
func (f *framer) frameLen(b []byte) (int, error) {
	n, err := wire.CheckFrame(b, f.max)
	switch {
	case errors.Is(err, wire.ErrTruncated):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("netio: frame: %w", err)
	}
	return n, nil
}

// split returns the first whole frame in b, nil while it is incomplete.
func (f *framer) split(b []byte) ([]byte, error) {
	n, err := f.frameLen(b)
	if n == 0 || len(b) < n {
		return nil, err
	}
	return b[:n], nil
}

// decode decodes one whole frame into m; keep is false for a message
// type we do not know, which is skipped (BEP 3: ignore unknown ids).
func decodeFrame(frame []byte, m *wire.Message) (keep bool, err error) {
	if len(frame) > 13 && frame[4] == byte(wire.Piece) {
		// The block goes to the session in a pooled buffer.
		m.Block = engine.BlockBuffer(len(frame) - 13)[:0]
	}
	switch err := wire.Decode(frame, m); {
	case errors.Is(err, wire.ErrUnknownMessage):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("netio: frame: %w", err)
	}
	return true, nil
}

// read decodes up to limit whole frames from src. more says whole frames
// may remain: the caller yields and comes back after the loop served the
// other connections. A partial frame waits for the socket instead. On an
// error msgs holds what was decoded before it.
func (f *framer) read(src source, limit int) (msgs []wire.Message, more bool, err error) {
	// One allocation per turn: requests, the bulk of a seed's traffic,
	// are 17 bytes each.
	msgs = make([]wire.Message, 0, min(limit, src.Buffered()/17+1))
	for range limit {
		n, err := f.frameLen(src.Peek(4))
		if err != nil {
			return msgs, false, err
		}
		if n == 0 || src.Buffered() < n {
			return msgs, false, nil
		}
		msgs = append(msgs, wire.Message{})
		keep, err := decodeFrame(src.Peek(n), &msgs[len(msgs)-1])
		src.Discard(n)
		if !keep {
			msgs = msgs[:len(msgs)-1]
		}
		if err != nil {
			return msgs, false, err
		}
	}
	return msgs, true, nil
}
