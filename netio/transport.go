package netio

import "net"

// A connection is layered: a transport moves bytes; a stack of stages on
// top (stack.go: cipher slot, handshake, framing) turns them into
// messages; peerConn (conn.go) hands those to the session and queues what
// the session sends. Only the transport knows the socket and its event
// loop, so that a uTP connection on a shared UDP socket can take TCP's
// place below the same stack.

// source is the receive side of a transport as the stages read it: what
// arrived and was not consumed yet, read in place. A stage peeks, and
// discards only what it has decoded, so a partial handshake or frame stays
// with the transport until the rest arrives and costs no buffer of ours.
type source interface {
	// Buffered is the number of bytes arrived and not consumed.
	Buffered() int
	// Peek returns the first n of them as one slice without consuming
	// them, nil while fewer than n have arrived. The slice is valid until
	// the next Discard and must not be kept.
	Peek(n int) []byte
	// Discard consumes the first n bytes.
	Discard(n int)
}

// transport moves one connection's bytes and nothing else: no protocol.
// Its receive side and Writev, Unsent and Wake run only on the goroutine
// that owns the connection (for TCP, its gnet event loop) during one of
// the owner's turns; Flush, Do and Close are safe from any goroutine.
type transport interface {
	source
	// Writev sends bufs in order, in one system call where it can. When it
	// returns the transport has written or copied every buffer: read-cache
	// views sent without a copy are released right after.
	Writev(bufs [][]byte) error
	// Unsent is what the transport took and has not got onto the wire yet
	// (its own outbound buffer), for backpressure.
	Unsent() int
	// Wake asks for another turn of the owner's traffic handler after the
	// loop served the others, for input left undecoded on purpose.
	Wake()
	// Flush runs the owner's flush(true, err) on the loop at its next
	// turn. An error means the loop will not run it (the connection is
	// gone); the caller then flushes itself, off the loop.
	Flush() error
	// Do runs fn on the loop at its next turn, with the loop's error if
	// the connection closed meanwhile; an error means it never will.
	Do(fn func(err error)) error
	// Close closes the connection; the owner hears of it on the loop.
	Close()
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// flusher is a transport's owner: what Flush runs. The gnet transport
// finds it through the connection's context instead of keeping a callback
// per connection.
type flusher interface {
	flush(onLoop bool, err error)
}
