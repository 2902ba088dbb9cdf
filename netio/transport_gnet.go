package netio

import (
	"net"

	"github.com/panjf2000/gnet/v2"
)

// gnetTransport is TCP on a gnet event loop. It is one word of state: the
// connection's owner is gnet's context for it (a *peerConn, set at
// enroll), so flushing needs no callback per connection. The loop owns it;
// see transport for the methods safe elsewhere.
type gnetTransport struct {
	c gnet.Conn
}

func (t *gnetTransport) Buffered() int { return t.c.InboundBuffered() }

// Peek: gnet returns nil when fewer than n bytes arrived, a view of its
// buffer when they are contiguous and a pooled copy where its ring wraps.
func (t *gnetTransport) Peek(n int) []byte {
	b, _ := t.c.Peek(n)
	return b
}

func (t *gnetTransport) Discard(n int) { t.c.Discard(n) }

func (t *gnetTransport) Writev(bufs [][]byte) error {
	// Above IOV_MAX (1024) writev fails and gnet would close the
	// connection, so long batches go in slices of maxIOV.
	for len(bufs) > 0 {
		k := min(len(bufs), maxIOV)
		if _, err := t.c.Writev(bufs[:k]); err != nil {
			return err
		}
		bufs = bufs[k:]
	}
	return nil
}

// maxIOV keeps each writev under Linux's IOV_MAX (1024).
const maxIOV = 512

func (t *gnetTransport) Unsent() int { return t.c.OutboundBuffered() }

func (t *gnetTransport) Wake() { t.c.Wake(nil) }

// Flush: an empty AsyncWritev is gnet's way to run a callback on the loop
// at high priority; the callback takes whatever is queued by then.
func (t *gnetTransport) Flush() error { return t.c.AsyncWritev(nil, gnetFlush) }

// gnetFlush is the one flush callback for every connection: gnet always
// passes the connection, whose context is its owner.
func gnetFlush(c gnet.Conn, err error) error {
	if f, ok := c.Context().(flusher); ok {
		f.flush(true, err)
	}
	return nil
}

func (t *gnetTransport) Do(fn func(err error)) error {
	return t.c.Wake(func(_ gnet.Conn, err error) error {
		fn(err)
		return nil
	})
}

func (t *gnetTransport) Close()               { t.c.Close() }
func (t *gnetTransport) LocalAddr() net.Addr  { return t.c.LocalAddr() }
func (t *gnetTransport) RemoteAddr() net.Addr { return t.c.RemoteAddr() }
