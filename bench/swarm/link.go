package swarm

import (
	"context"
	"crypto/cipher"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine/wire"
	"gotorrentserver/netio"
)

// link is what carries a connection's bytes: a gnet connection, in
// plaintext or RC4, or a uTP connection. The peer protocol above it (conn)
// is the same on all.
type link interface {
	// write sends b on the connection's loop; b is the caller's again when
	// it returns, and may have been encrypted in place.
	write(b []byte)
	// close closes the connection; any goroutine.
	close()
	// keepAlive sends a keep-alive message, in order with what the loop
	// writes; any goroutine.
	keepAlive()
}

var keepAliveMsg = wire.AppendKeepAlive(nil)

// tcpLink is a plaintext gnet connection.
type tcpLink struct{ gc gnet.Conn }

func (l tcpLink) write(b []byte) { l.gc.Write(b) }
func (l tcpLink) close()         { l.gc.Close() }
func (l tcpLink) keepAlive()     { l.gc.AsyncWrite(keepAliveMsg, nil) }

// mseLink is a gnet connection past an MSE handshake: everything written
// is RC4-encrypted on the loop, in the order written, since the stream
// cipher's state is the order.
type mseLink struct {
	gc  gnet.Conn
	enc cipher.Stream
	ctx context.Context
}

func (l *mseLink) write(b []byte) {
	l.enc.XORKeyStream(b, b)
	l.gc.Write(b)
}

func (l *mseLink) close() { l.gc.Close() }

func (l *mseLink) keepAlive() {
	l.gc.EventLoop().Execute(l.ctx, gnet.RunnableFunc(func(context.Context) error {
		// After a close gnet refuses the write; the stream is dead anyway.
		l.write(slices.Clone(keepAliveMsg))
		return nil
	}))
}

// initiateMSE runs the MSE handshake on a dialed connection before it goes
// to a loop, with our BitTorrent handshake inside it; the loop then starts
// with what arrived after the handshake (rx).
func (c *conn) initiateMSE(nc net.Conn, timeout time.Duration) error {
	nc.SetDeadline(time.Now().Add(timeout))
	enc, dec, rest, err := netio.InitiateMSE(nc, c.t.mi.InfoHash, c.handshake())
	if err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	nc.SetDeadline(time.Time{})
	c.enc, c.dec = enc, dec
	if len(rest) > 0 {
		c.rx = append(getRx(), rest...)
	}
	return nil
}

// rxPool holds decrypted bytes between their arrival and consume: a
// connection keeps a buffer only while a partial frame waits in it.
var rxPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func getRx() []byte { return (*rxPool.Get().(*[]byte))[:0] }

// decrypt appends b, decrypted, to what waits in rx; gnet's buffer may be
// a pooled copy where its ring wraps, so b is not decrypted in place.
func (c *conn) decrypt(b []byte) {
	if c.rx == nil {
		c.rx = getRx()
	}
	k := len(c.rx)
	c.rx = slices.Grow(c.rx, len(b))[:k+len(b)]
	c.dec.XORKeyStream(c.rx[k:], b)
}

// consumeRx consumes the whole frames in rx and keeps the rest.
func (c *conn) consumeRx() error {
	if len(c.rx) == 0 {
		return nil
	}
	n, err := c.consume(c.rx)
	c.rx = c.rx[:copy(c.rx, c.rx[n:])]
	if len(c.rx) == 0 {
		b := c.rx
		rxPool.Put(&b)
		c.rx = nil
	}
	return err
}
