package netio

import (
	"net"

	"gotorrentserver/netio/utp"
)

// utpTransport is a uTP connection below a peerConn, on the shared UDP
// socket: the stack's transport and the uTP connection's handler, so the
// Mux's loop calls peerConn where gnet's OnOpen, OnTraffic and OnClose
// would for TCP. The Mux's loop owns it; see transport for the methods
// safe elsewhere (Flush, Do and Close hand their work to the loop).
type utpTransport struct {
	c     *utp.Conn // set by Opened, before peerConn sees the transport
	pc    *peerConn
	local net.Addr
	// dialed, for a dial, gets its outcome once: nil when it connected.
	dialed chan error
	opened bool
}

func (t *utpTransport) Buffered() int              { return t.c.Buffered() }
func (t *utpTransport) Peek(n int) []byte          { return t.c.Peek(n) }
func (t *utpTransport) Discard(n int)              { t.c.Discard(n) }
func (t *utpTransport) Writev(bufs [][]byte) error { return t.c.Write(bufs) }
func (t *utpTransport) Unsent() int                { return t.c.Unsent() }
func (t *utpTransport) Wake()                      { t.c.Wake() }

func (t *utpTransport) Flush() error {
	return t.c.Do(func(err error) { t.pc.flush(true, err) })
}

func (t *utpTransport) Do(fn func(err error)) error { return t.c.Do(fn) }
func (t *utpTransport) Close()                      { t.c.Close() }
func (t *utpTransport) LocalAddr() net.Addr         { return t.local }
func (t *utpTransport) RemoteAddr() net.Addr        { return t.c.RemoteNetAddr() }

// Opened implements utp.Handler: the connection is the peerConn's now.
func (t *utpTransport) Opened(c *utp.Conn) {
	t.c, t.opened = c, true
	if t.dialed != nil {
		t.dialed <- nil
	}
	if !t.pc.open(t) {
		c.Close()
	}
}

// Readable implements utp.Handler, as OnTraffic does for TCP.
func (t *utpTransport) Readable(c *utp.Conn) {
	if t.pc.onTraffic() != nil {
		c.Close()
	}
}

// Closed implements utp.Handler. A dial that never connected is the
// dialer's to report, not the connection's.
func (t *utpTransport) Closed(c *utp.Conn, err error) {
	if !t.opened {
		if t.dialed != nil {
			t.dialed <- err
		}
		return
	}
	t.pc.onClose(err)
}

var _ transport = (*utpTransport)(nil)
