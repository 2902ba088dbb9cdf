package netio

import (
	"bytes"
	"crypto/cipher"
	"crypto/sha1"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"gotorrentserver/engine/wire"
)

// rc4Conn is a net.Conn speaking through InitiateMSE's streams: what the
// handshake returned as rest is read first.
type rc4Conn struct {
	net.Conn
	enc, dec cipher.Stream
	rest     []byte
}

func (c *rc4Conn) Read(b []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	n, err := c.Conn.Read(b)
	c.dec.XORKeyStream(b[:n], b[:n])
	return n, err
}

func (c *rc4Conn) Write(b []byte) (int, error) {
	e := make([]byte, len(b))
	c.enc.XORKeyStream(e, b)
	return c.Conn.Write(e)
}

// A node that requires encryption takes InitiateMSE's handshake: the
// BitTorrent handshake sent inside it is answered, and a whole piece
// requested over the RC4 streams arrives intact.
func TestInitiateMSE(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{Encryption: EncryptionRequire})
	c, err := net.DialTimeout("tcp", n.addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	hs := wire.AppendHandshake(nil, wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: mi.InfoHash, PeerID: rawID})
	enc, dec, rest, err := InitiateMSE(c, mi.InfoHash, hs)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaw(t, &rc4Conn{Conn: c, enc: enc, dec: dec, rest: rest})
	if err := r.readHandshake(); err != nil {
		t.Fatal(err)
	}
	if r.hs.InfoHash != mi.InfoHash {
		t.Fatalf("handshake for %x, want %x", r.hs.InfoHash, mi.InfoHash)
	}
	r.send(wire.AppendSimple(nil, wire.Interested))
	if _, err := r.readUntil(wire.Unchoke); err != nil {
		t.Fatal(err)
	}
	size := uint32(mi.PieceSize(0))
	for begin := uint32(0); begin < size; begin += wire.DefaultBlockLen {
		r.send(wire.AppendRequest(nil, 0, begin, min(wire.DefaultBlockLen, size-begin)))
	}
	piece := make([]byte, size)
	for got := uint32(0); got < size; {
		m, err := r.readUntil(wire.Piece)
		if err != nil {
			t.Fatal(err)
		}
		got += uint32(copy(piece[m.Begin:], m.Block))
	}
	if sha1.Sum(piece) != mi.Pieces[0] {
		t.Fatal("piece 0 arrived corrupt over RC4")
	}
}

// A peer that will not encrypt fails the handshake, and so does one that
// answers with something else than MSE.
func TestInitiateMSERefused(t *testing.T) {
	n, mi := seedingNodeWith(t, Config{Encryption: EncryptionDisable})
	c, err := net.DialTimeout("tcp", n.addr().String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, _, _, err := InitiateMSE(c, mi.InfoHash, nil); err == nil {
		t.Fatal("a node with encryption disabled took the handshake")
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	go b.Write(bytes.Repeat([]byte{0x13}, 2048))
	a.SetDeadline(time.Now().Add(20 * time.Second))
	if _, _, _, err := InitiateMSE(a, mi.InfoHash, nil); !errors.Is(err, errMSENoSync) {
		t.Fatalf("junk after Yb: %v, want %v", err, errMSENoSync)
	}
}
