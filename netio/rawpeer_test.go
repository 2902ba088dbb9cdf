package netio

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// rawPeer is a hand-driven peer for hostile-input tests: it speaks exactly
// the bytes a test tells it to.
type rawPeer struct {
	t  testing.TB
	c  net.Conn
	hs wire.Handshake // what the other side answered
}

var rawID = [20]byte{'-', 'R', 'W', '0', '0', '0', '1', '-', 'h', 'o', 's', 't', 'i', 'l', 'e', 'p', 'e', 'e', 'r', '1'}

func newRaw(t testing.TB, c net.Conn) *rawPeer {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c}
}

// dialRaw connects to addr and sends a handshake for ih; it does not wait
// for the answer (an unknown infohash gets none).
func dialRaw(t testing.TB, addr string, ih metainfo.Hash) *rawPeer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, c)
	r.sendHandshake(ih)
	return r
}

func (r *rawPeer) sendHandshake(ih metainfo.Hash) {
	r.send(wire.AppendHandshake(nil, wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: ih, PeerID: rawID}))
}

func (r *rawPeer) readHandshake() error {
	buf := make([]byte, wire.HandshakeLen)
	if _, err := io.ReadFull(r.c, buf); err != nil {
		return err
	}
	hs, err := wire.ParseHandshake(buf)
	r.hs = hs
	return err
}

func (r *rawPeer) send(b []byte) {
	if _, err := r.c.Write(b); err != nil {
		r.t.Logf("raw write: %v", err)
	}
}

// read returns the next message, skipping keep-alives.
func (r *rawPeer) read() (wire.Message, error) {
	var m wire.Message
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r.c, hdr[:]); err != nil {
			return m, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<20 {
			return m, errors.New("raw: frame too large")
		}
		frame := make([]byte, 4+n)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(r.c, frame[4:]); err != nil {
			return m, err
		}
		if n == 0 {
			continue
		}
		if err := wire.Decode(frame, &m); err != nil && !errors.Is(err, wire.ErrUnknownMessage) {
			return m, err
		}
		return m, nil
	}
}

// readUntil reads messages until one of type typ arrives.
func (r *rawPeer) readUntil(typ wire.Type) (wire.Message, error) {
	for {
		m, err := r.read()
		if err != nil || m.Type == typ {
			return m, err
		}
	}
}

// expectClosed reads until the other side closes, failing if it does not
// within timeout.
func (r *rawPeer) expectClosed(what string, timeout time.Duration) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	for {
		if _, err := r.c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("%s: connection still open after %v", what, timeout)
			}
			return // EOF or reset: closed, as wanted
		}
	}
}
