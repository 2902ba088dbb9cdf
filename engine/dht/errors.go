// Package dht is a BEP 5 Mainline DHT node: KRPC over one UDP socket, a
// Kademlia routing table, a bounded peer store, and iterative get_peers
// lookups. It runs on its own goroutines and never touches torrent
// sessions: found peers are delivered through callbacks the caller passes,
// and the caller turns them into session events.
//
// The node contacts only the bootstrap nodes its caller configures (and the
// nodes those lead to); there are no built-in routers.
//
// Node ids are 160 random bits. BEP 42 id hardening is not implemented:
// ids are neither derived from our address nor checked on others, because
// the table's flood defences (only nodes that answer our own queries are
// inserted, one node per IP by default, bounded buckets) already keep a
// flood of fresh ids out, and BEP 42 ids cannot be computed behind NAT
// without knowing the external address.
package dht

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error this package returns is, or wraps, one of
// them (or a context error).
var (
	// ErrBadPacket: not a KRPC message: bad bencode, over the size or depth
	// limits, or missing t or y. Such packets are dropped silently.
	ErrBadPacket = errors.New("dht: malformed KRPC packet")
	// ErrBadQuery: a well-formed KRPC query with missing or invalid
	// arguments; a server answers it with error 203.
	ErrBadQuery = errors.New("dht: invalid query arguments")
	// ErrUnknownMethod: a query for a method we do not implement; a server
	// answers it with error 204.
	ErrUnknownMethod = errors.New("dht: unknown query method")
	// ErrRemote: the remote node answered with a KRPC error. Returned as
	// *RemoteError.
	ErrRemote = errors.New("dht: remote error")
	// ErrTimeout: the remote node did not answer in time.
	ErrTimeout = errors.New("dht: query timed out")
	// ErrBusy: too many queries are outstanding; try again later.
	ErrBusy = errors.New("dht: too many outstanding queries")
	// ErrNoNodes: the routing table is empty and no bootstrap node answered.
	ErrNoNodes = errors.New("dht: no nodes to query")
	// ErrClosed: the node is closed (or not started).
	ErrClosed = errors.New("dht: node closed")
	// ErrStarted: the call is only allowed before Start.
	ErrStarted = errors.New("dht: node already started")
	// ErrConfig: the configuration cannot be used.
	ErrConfig = errors.New("dht: invalid configuration")
	// ErrBadState: saved routing-table bytes that Load cannot read.
	ErrBadState = errors.New("dht: invalid saved state")
)

// RemoteError is a KRPC error reply: 201 generic, 202 server, 203
// protocol (malformed packet, bad token), 204 method unknown.
type RemoteError struct {
	Code int
	Msg  string
}

// Error formats the code and the remote's (sanitised) text. Any goroutine.
func (e *RemoteError) Error() string {
	return "dht: remote error " + strconv.Itoa(e.Code) + ": " + e.Msg
}

// Unwrap lets errors.Is(err, ErrRemote) match. Any goroutine.
func (e *RemoteError) Unwrap() error { return ErrRemote }
