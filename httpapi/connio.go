package httpapi

// The tracked connection itself: what it reads (the end of its first
// request's headers), how it closes (draining a refused upload), and the
// listener that hands fasthttp only admitted connections.

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// drain half-closes c (the answer is already flushed and a FIN follows
// it), then discards what the client still sends, bounded in bytes and
// time, so that closing does not reset the connection under an answer the
// client has not read yet.
func drain(c net.Conn, maxBytes int64, d time.Duration) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if c.SetReadDeadline(time.Now().Add(d)) == nil {
		_, _ = io.CopyN(io.Discard, c, maxBytes)
	}
}

// Read feeds the first request's bytes to the header scanner, which tells
// the reaper and the eviction order that the client got past its headers.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.headerSeen.Load() && c.scan.feed(p[:n]) {
		c.headerSeen.Store(true)
	}
	return n, err
}

// Close drains first when marked (see markLinger), then closes and
// forgets the connection. fasthttp calls it once, on the connection's
// goroutine, so a drain counts against the server's concurrency, and the
// connection stays counted (and evictable) until it is over.
func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		if n := c.linger.Load(); n > 0 {
			drain(c.Conn, n, lingerTime)
		}
		err = c.Conn.Close()
		c.t.closed(c)
	})
	return err
}

// markLinger asks for a draining close of ctx's connection, at most
// maxBytes. fasthttp answers a refused upload and closes at once, with the
// rest of the upload still unread; the kernel then resets the connection,
// which can destroy the answer before the client reads it. Draining first
// keeps the answer readable.
func markLinger(ctx *fasthttp.RequestCtx, maxBytes int64) {
	if c, ok := ctx.Conn().(*trackedConn); ok {
		c.linger.Store(maxBytes)
	}
}

// markLingerUpload asks for the drain of a refused upload from a token
// holder: its whole body, whatever it announced.
func (s *Server) markLingerUpload(ctx *fasthttp.RequestCtx) {
	markLinger(ctx, s.conns.lim.uploadLinger)
}

// proveConn records that ctx's connection carried the token.
func proveConn(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*trackedConn); ok && !c.proven.Load() {
		c.t.prove(c)
	}
}

// headerEnd finds the end of the first request's headers in the bytes the
// server reads: an empty line ("\n" or "\r\n") after a line with content.
// Empty lines before the request line do not count; fasthttp skips them
// too. The token is checked only later, by the handler, which fasthttp
// calls after reading the body; the reaper uses this to tell a client
// still sending its headers from one uploading a body.
type headerEnd struct {
	lineLen int  // bytes on the current line so far
	cr      bool // the last byte was '\r', not yet counted
	content bool // a line with content has ended
}

// feed scans p and reports whether the headers have ended.
func (h *headerEnd) feed(p []byte) bool {
	for _, b := range p {
		switch b {
		case '\n':
			if h.lineLen == 0 && h.content {
				return true
			}
			h.content = h.content || h.lineLen > 0
			h.lineLen, h.cr = 0, false
		case '\r':
			if h.cr {
				h.lineLen++
			}
			h.cr = true
		default:
			if h.cr {
				h.lineLen++
				h.cr = false
			}
			h.lineLen++
		}
	}
	return false
}

// trackingListener hands fasthttp only admitted connections, answering the
// others itself. Accept runs on fasthttp's accept loop; Close may run on
// any goroutine, more than once (Shutdown and fasthttp both call it).
type trackingListener struct {
	net.Listener
	t    *connTracker
	once sync.Once
}

func (l *trackingListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !retryableAccept(err) {
				return nil, err
			}
			// fasthttp stops serving for good on any accept error but a
			// timeout; running out of descriptors under a flood must not
			// end the API.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.t.logf("httpapi: accept: %v; retrying in %v", err, backoff)
			timer := time.NewTimer(backoff)
			select {
			case <-l.t.done:
				timer.Stop()
				return nil, net.ErrClosed
			case <-timer.C:
			}
			continue
		}
		backoff = 0
		if tc := l.t.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// Close closes the socket and stops the tracker the first time; later
// calls do nothing.
func (l *trackingListener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.Listener.Close()
		l.t.stop()
	})
	return err
}

// retryableAccept reports accept errors that pass once connections close.
func retryableAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
