package dht

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Node. Zero fields take the documented defaults.
type Config struct {
	// Conn is the socket to use, the caller's: in the daemon, netio's
	// UDP socket on the peer port (its DHT route), which UDP trackers and
	// uTP share, as in libtorrent and Transmission. Close closes it (for
	// netio's route that only detaches the node). Without it the node
	// binds Listen itself.
	Conn PacketConn
	// IPv6 makes a node on Conn speak IPv6 (nodes6) rather than IPv4: a
	// shared socket may be dual-stack, so its address does not tell.
	IPv6 bool
	// Listen, when Conn is nil, is the UDP address to bind, an IP literal
	// and port such as "0.0.0.0:6881" or "127.0.0.1:0"; ":6881" means
	// 0.0.0.0. The node speaks the family of this address only (nodes for
	// IPv4, nodes6 for IPv6); run two nodes for both.
	Listen string
	// Bootstrap lists host:port contacts to join through. There are no
	// built-in routers: with none configured (and nothing loaded) the node
	// only learns nodes that contact it or that AddNode names.
	Bootstrap []string
	// ID is our node id; zero draws a random one (Load may replace it).
	ID NodeID
	// Now is the clock for routing-table freshness, tokens, storage expiry
	// and rate limits (default time.Now). Network timeouts use real time.
	Now func() time.Time
	// Logf receives operational messages (default: discarded).
	Logf func(format string, args ...any)
	// AllowSameIP lets several table entries share an IP address. Off by
	// default, as in libtorrent, so one host cannot fill our table; tests
	// and LANs running many nodes on one address turn it on.
	AllowSameIP bool
	// QueryRate is the sustained queries per second accepted from one
	// source IP (default 10; negative disables limiting), QueryBurst the
	// bucket size (default 50), MaxSources the number of source IPs
	// tracked (default 4096).
	QueryRate  float64
	QueryBurst int
	MaxSources int
	// MaxInfohashes (default 10,000) and MaxPeersPerInfohash (default
	// 200) bound the announce store; PeerTTL (default 30 min) is how long
	// an announce lasts.
	MaxInfohashes       int
	MaxPeersPerInfohash int
	PeerTTL             time.Duration
	// QueryTimeout bounds the wait for one reply (default 3s),
	// LookupTimeout one iterative lookup (default 20s).
	QueryTimeout  time.Duration
	LookupTimeout time.Duration
	// MaxPending bounds our outstanding queries (default 512).
	MaxPending int
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	setDefault(&c.QueryRate, 10)
	setDefault(&c.QueryBurst, 50)
	setDefault(&c.MaxSources, 4096)
	setDefault(&c.MaxInfohashes, 10000)
	setDefault(&c.MaxPeersPerInfohash, 200)
	setDefault(&c.PeerTTL, 30*time.Minute)
	setDefault(&c.QueryTimeout, 3*time.Second)
	setDefault(&c.LookupTimeout, 20*time.Second)
	setDefault(&c.MaxPending, 512)
}

func setDefault[T int | float64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// version is our KRPC "v": client code "GS", version 0.1.
var version = []byte("GS\x00\x01")

const (
	maxVerify      = 16 // concurrent pings verifying unknown queriers
	maxReplyValues = 50 // peers per get_peers reply: keeps it under ~600 bytes
)

// PacketConn is what a node needs of its socket; *net.UDPConn has it.
// Reads come from the node's one reader goroutine; after Close, reads fail
// with net.ErrClosed.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Node is a DHT node. Create it with New, optionally Load saved state,
// then Start; Close stops it. Methods are safe for concurrent use unless
// their comment says otherwise.
type Node struct {
	cfg    Config
	listen netip.AddrPort

	mu        sync.Mutex
	id        NodeID
	conn      PacketConn
	local     netip.AddrPort
	v6        bool
	table     *table
	store     *store
	tokens    *tokens
	limit     *limiter
	txs       map[string]*pendingTx
	verifying map[netip.AddrPort]struct{}
	loaded    []netip.AddrPort
	started   bool
	closed    bool
	stats     Stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Stats is a snapshot of a node's state, for monitoring and tests.
type Stats struct {
	ID             NodeID
	Nodes          int // in buckets
	GoodNodes      int
	Replacements   int
	Buckets        int
	Infohashes     int // in the announce store
	StoredPeers    int
	Pending        int // our outstanding queries
	QueriesServed  int64
	QueriesLimited int64 // dropped by the per-IP rate limit
	BadPackets     int64
}

// New validates cfg and prepares a node without binding its socket.
func New(cfg Config) (*Node, error) {
	cfg.defaults()
	var listen netip.AddrPort
	switch {
	case cfg.Conn != nil:
	case cfg.Listen == "":
		return nil, fmt.Errorf("%w: no socket and no listen address", ErrConfig)
	default:
		s := cfg.Listen
		if s[0] == ':' {
			s = "0.0.0.0" + s
		}
		var err error
		if listen, err = netip.ParseAddrPort(s); err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, cfg.Listen, err)
		}
		cfg.IPv6 = listen.Addr().Unmap().Is6()
	}
	id := cfg.ID
	if id == (NodeID{}) {
		id = RandomNodeID()
	}
	now := cfg.Now()
	n := &Node{
		cfg: cfg, listen: listen, id: id, v6: cfg.IPv6,
		table:  newTable(id, cfg.AllowSameIP, now),
		store:  newStore(cfg.MaxInfohashes, cfg.MaxPeersPerInfohash, cfg.PeerTTL),
		tokens: newTokens(now),
		limit:  newLimiter(cfg.QueryRate, cfg.QueryBurst, cfg.MaxSources),
		txs:    make(map[string]*pendingTx),

		verifying: make(map[netip.AddrPort]struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Start binds the socket and starts the reader and maintenance goroutines;
// the latter bootstraps in the background when the table is empty. Call
// it once; any goroutine.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.started {
		return ErrStarted
	}
	n.conn = n.cfg.Conn
	if n.conn == nil {
		network := "udp4"
		if n.v6 {
			network = "udp6"
		}
		conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(n.listen))
		if err != nil {
			return fmt.Errorf("dht: listen %s: %w", n.listen, err)
		}
		n.conn = conn
	}
	if ua, ok := n.conn.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		n.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	n.started = true
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.readLoop() }()
	go func() { defer n.wg.Done(); n.maintain() }()
	return nil
}

// Close stops the node: outstanding calls return ErrClosed or a context
// error, and Close returns once every goroutine of the node has exited.
// Idempotent; any goroutine, but not from a GetPeers or Announce callback.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conn := n.conn
	n.mu.Unlock()
	n.cancel()
	if conn != nil {
		conn.Close()
	}
	n.wg.Wait()
	return nil
}

// ID returns our node id. Any goroutine.
func (n *Node) ID() NodeID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// LocalAddr returns the bound UDP address (invalid before Start). Any
// goroutine.
func (n *Node) LocalAddr() netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.local
}

// Stats returns a snapshot of the node's counters. Any goroutine.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.ID = n.id
	s.Nodes, s.GoodNodes, s.Replacements = n.table.counts(n.cfg.Now())
	s.Buckets = len(n.table.buckets)
	s.Infohashes, s.StoredPeers = len(n.store.swarms), n.store.peers
	s.Pending = len(n.txs)
	return s
}

// NodeCount is the number of nodes in the routing table (engine.Client's
// Stats asks). Any goroutine.
func (n *Node) NodeCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	nodes, _, _ := n.table.counts(n.cfg.Now())
	return nodes
}

// enter registers a caller-driven operation so Close waits for it, and
// ties ctx to the node's lifetime. The returned func must be called when
// the operation ends.
func (n *Node) enter(ctx context.Context) (context.Context, func(), error) {
	n.mu.Lock()
	if !n.started || n.closed {
		n.mu.Unlock()
		return nil, nil, ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() { stop(); cancel(); n.wg.Done() }, nil
}

// goAsync runs f on a goroutine Close waits for, unless the node is
// closed or not started.
func (n *Node) goAsync(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started || n.closed {
		return false
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
	return true
}
