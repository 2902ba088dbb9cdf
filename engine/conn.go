package engine

import (
	"net/netip"

	"gotorrentserver/metainfo"
)

// PeerConn is a peer connection owned by the network layer (netio). The
// session writes through it and never touches the socket. All methods are
// safe to call from any goroutine and never block.
type PeerConn interface {
	// Send queues frames for writing, in order. The session gives up the
	// buffers: they must not be modified after the call.
	Send(bufs ...[]byte)
	// SendBlock queues a piece message, hdr then block, and calls release
	// once block is written or copied into the network layer's own buffer:
	// block may be a view into the shared read cache, or a BlockBuffer to
	// recycle. If the connection dies before the write is taken, release
	// may never be called; it only recycles, so nothing leaks but a reuse.
	SendBlock(hdr, block []byte, release func())
	// Close closes the connection; the network layer then reports it closed.
	Close()
	// RemoteAddr is the peer's address.
	RemoteAddr() netip.AddrPort
	// Buffered is how many bytes wait to be written; the session stops
	// reading blocks from disk for a peer above a bound.
	Buffered() int
	// Unsent is the part of Buffered the socket would not take: the
	// peer's link or window holds it back, not our side. The rest is
	// queued for the event loop, which grows when the loop is behind.
	Unsent() int
	// NotifyWritable asks for one Peer.Writable call once Buffered has
	// dropped under the bound again.
	NotifyWritable(bound int)
}

// ConnKind is what a PeerConn may also implement to say what kind of link
// it is, for the peer list (Encrypted and UTP in PeerSnapshot). Both are
// fixed before Attach and called once, from Attach's goroutine.
type ConnKind interface {
	// Encrypted reports whether the payload is RC4-encrypted (MSE).
	Encrypted() bool
	// Transport is "tcp" or "utp".
	Transport() string
}

// Dialer makes outbound connections. Dial returns at once; the network layer
// dials with a timeout under a half-open limit, does the handshake and then
// calls Session.Attach, or Session.DialFailed. Safe for concurrent use.
type Dialer interface {
	Dial(addr netip.AddrPort, infoHash metainfo.Hash, s *Session)
}

// UTPHints is what a Dialer that also dials uTP may implement: the session
// passes on the addresses a PEX message flagged as speaking uTP, so that
// they are dialed over uTP first. Safe for concurrent use.
type UTPHints interface {
	PreferUTP(addr netip.AddrPort)
}
