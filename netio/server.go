// Package netio owns every socket the daemon has toward peers: the TCP
// connections, multiplexed on gnet event loops, and the one UDP socket on
// the peer port that the DHT, the UDP tracker client and uTP connections
// (package utp, on a loop goroutine of its own) share (udp.go). It
// accepts and dials connections itself and runs each through layers: a
// transport that moves bytes (transport.go), a stack of stages that
// handshakes and frames on plain slices (stack.go), and the connection
// that hands decoded messages to the engine's sessions (conn.go). It never
// blocks an event loop and never touches session state.
//
// Concurrency: gnet's loops own each TCP connection's transport, stack
// and buffers, the uTP Mux's loop each uTP connection's; the accept loop
// and the dial goroutines only admit connections and enroll them on a
// loop; the UDP reader goroutine only routes datagrams. Server's and
// UDP's exported methods are safe from any goroutine.
package netio

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/utp"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	ListenAddr  string        // host:port for peers; default "0.0.0.0:6881"
	DialTimeout time.Duration // default 10 s
	MaxHalfOpen int           // outbound dials in progress at once; default 64
	// MaxQueuedDials bounds dials waiting for a half-open slot (each is a
	// goroutine); past it a dial fails at once with engine.ErrDialBusy and
	// the session retries later. Default 1024.
	MaxQueuedDials int
	Loops          int // event loops; default one per core
	// FramesPerWake bounds the frames decoded per connection per wake-up, so
	// one fast peer cannot starve the others on its loop; default 128.
	FramesPerWake int
	// HandshakeTimeout closes connections that have not completed the
	// handshake in time; default 10 s (libtorrent's handshake_timeout).
	HandshakeTimeout time.Duration
	// MaxPending bounds connections that have not finished the handshake,
	// inbound and outbound together; they also count against the engine's
	// MaxPeers. Default 4096: in a connection storm from honest peers the
	// loops answer handshakes later than we accept, and at 512 the
	// evictions of waiting honest peers doubled the time 10,000 of them
	// took to connect (bench d); a few KiB each, they are cheap to hold.
	MaxPending int
	// MaxPendingPerIP bounds one source address's inbound connections that
	// have not finished the handshake; default 32.
	MaxPendingPerIP int
	// DHT sets the BEP 5 reserved bit in our handshakes (we run a node).
	DHT bool
	// NoUTP turns uTP off: no uTP connections are accepted or dialed.
	NoUTP bool
	// UTPFallback is how long a uTP dial waits for the peer's answer
	// before it gives up (and TCP is tried, if it was not yet); default
	// 3 s (libtorrent's uTP connect timeout).
	UTPFallback time.Duration
	// Encryption is the MSE policy (mse.go); the zero value, prefer,
	// accepts both, dials encrypted first and falls back to plaintext
	// once per peer.
	Encryption Encryption
	// UDPRequired makes Listen fail when the UDP socket cannot be bound on
	// the peer port's number (the DHT needs it there); otherwise that is
	// logged, UDP returns nil, and UDP trackers use sockets of their own.
	UDPRequired bool
	// Logf receives the network layer's own notices (listener trouble,
	// gnet's errors); default log.Printf.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = "0.0.0.0:6881"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.MaxHalfOpen <= 0 {
		c.MaxHalfOpen = 64
	}
	if c.MaxQueuedDials <= 0 {
		c.MaxQueuedDials = 1024
	}
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if c.FramesPerWake <= 0 {
		c.FramesPerWake = 128
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.MaxPendingPerIP <= 0 {
		c.MaxPendingPerIP = 32
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
	if c.UTPFallback <= 0 {
		c.UTPFallback = 3 * time.Second
	}
}

// Server is the network layer for all peer connections and the shared UDP
// socket. Listen binds the sockets, then the engine is built with the
// server as its dialer and listener status, then Serve starts serving that
// engine: no setter is called on either once it runs, and neither holds
// the other before it exists. Serve and Stop may be called from any
// goroutine; Dial and ListenError are safe for concurrent use.
type Server struct {
	gnet.BuiltinEventEngine
	cfg      Config
	client   *engine.Client // set by Serve before any loop or accept runs
	loops    *gnet.Client
	halfOpen chan struct{}
	queued   atomic.Int64 // dials waiting for or holding a half-open slot
	pending  pendingSet
	ln       listener
	ctx      context.Context
	cancel   context.CancelFunc
	dials    sync.WaitGroup
	accepts  sync.WaitGroup // the accept loop and its enrolling goroutines
	// troubled is when the listener's current trouble began (unix ns),
	// 0 while it accepts; scarceUntil is until when enrolling spends the
	// spare descriptor.
	troubled    atomic.Int64
	scarceUntil atomic.Int64
	spare       spareFD

	// plainPeers are peers that hung up on our encrypted handshake: they
	// are dialed in plaintext (prefer).
	plainPeers addrSet
	// lookup is skeyFor, made once rather than per inbound connection.
	lookup func(req2 [20]byte) ([20]byte, bool)

	udp       *UDP
	mux       *utp.Mux // uTP on udp; nil without either
	hints     utpHints
	stopping  bool // under dialMu: no new dial goroutines
	dialMu    sync.Mutex
	serving   atomic.Bool            // Serve has set client and loops
	listenErr atomic.Pointer[string] // the listener's trouble, "" when fine
}

// Listen binds the peer port and, on its address and port number, the
// shared UDP socket; it serves nothing until Serve. A port of 0 picks one
// free for both TCP and UDP.
func Listen(cfg Config) (*Server, error) {
	cfg.defaults()
	s := &Server{cfg: cfg, halfOpen: make(chan struct{}, cfg.MaxHalfOpen)}
	s.lookup = s.skeyFor
	s.pending.init(cfg.MaxPending, cfg.MaxPendingPerIP)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.bind(); err != nil {
		return nil, err
	}
	s.spare.take()
	return s, nil
}

// UDP is the shared UDP socket, nil if it could not be bound. It outlives
// Stop, so that the engine's last announces and the DHT's goodbyes can use
// it: close it after them.
func (s *Server) UDP() *UDP { return s.udp }

// ListenError is the peer listener's trouble, or "" while it accepts.
// Implements engine.ListenStatus; any goroutine.
func (s *Server) ListenError() string {
	if p := s.listenErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *Server) setListenError(msg string) { s.listenErr.Store(&msg) }

// Serve starts the event loops and the accept loop for client, which must
// have been built with s as its Dialer; it returns once both run. Once.
func (s *Server) Serve(client *engine.Client) error {
	s.client = client
	// gnet runs only the loops: accepting is ours (see listen.go), so that
	// running out of descriptors pauses accepting instead of ending gnet's
	// main reactor, and dialed and accepted connections enroll the same way.
	cli, err := gnet.NewClient(s,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.cfg.Loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReadBufferCap(256<<10),
		gnet.WithLogger(gnetLogger{s.cfg.Logf}),
	)
	if err == nil {
		err = cli.Start()
	}
	if err != nil {
		s.ln.close()
		return fmt.Errorf("netio: event loops: %w", err)
	}
	s.loops = cli
	if s.udp != nil && !s.cfg.NoUTP {
		s.mux = utp.NewMux(s.udp, utp.Config{Accept: s.acceptUTP, SynTimeouts: synTimeouts(s.cfg.UTPFallback)})
		s.udp.attachUTP(s.mux.Deliver)
	}
	s.serving.Store(true)
	s.accepts.Add(1)
	go s.acceptLoop()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.addr }

// Port is the listening port.
func (s *Server) Port() uint16 {
	if ap, err := netip.ParseAddrPort(s.ln.addr.String()); err == nil {
		return ap.Port()
	}
	return 0
}

// Stop closes the listener and every connection and stops the event loops;
// the UDP socket stays open (see UDP). After Listen alone, it releases the
// peer port.
func (s *Server) Stop() error {
	s.cancel()
	s.ln.close()
	s.accepts.Wait()
	s.spare.close()
	s.dialMu.Lock()
	s.stopping = true
	s.dialMu.Unlock()
	s.dials.Wait()
	if s.mux != nil {
		s.udp.detachUTP()
		s.mux.Close()
	}
	if s.loops == nil {
		return nil
	}
	return s.loops.Stop()
}

// Dial connects to addr for the torrent ih in the background: a dial with a
// timeout under the half-open limit, then the connection is enrolled on an
// event loop, which sends our handshake. Failures go to s.DialFailed.
// Implements engine.Dialer; safe for concurrent use.
//
// TCP or uTP: a peer that a PEX message flagged as speaking uTP
// (PreferUTP) is dialed over uTP first, TCP if it does not answer in
// UTPFallback; any other over TCP first, then uTP if TCP is refused,
// times out, or the peer hangs up before saying anything (what a
// libtorrent with incoming TCP off does), so that a uTP-only peer is
// reached.
func (s *Server) Dial(addr netip.AddrPort, ih metainfo.Hash, sess *engine.Session) {
	if !s.serving.Load() {
		sess.DialFailed(addr, errors.New("netio: not serving yet"))
		return
	}
	if s.queued.Add(1) > int64(s.cfg.MaxQueuedDials) {
		s.queued.Add(-1)
		sess.DialFailed(addr, engine.ErrDialBusy)
		return
	}
	if !s.goDial(func() {
		defer s.queued.Add(-1)
		if err := s.dial(addr, sess); err != nil {
			sess.DialFailed(addr, err)
		}
	}) {
		s.queued.Add(-1)
		sess.DialFailed(addr, net.ErrClosed)
	}
}

// goDial runs f on a dial goroutine that Stop waits for; false once Stop
// began.
func (s *Server) goDial(f func()) bool {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	if s.stopping {
		return false
	}
	s.dials.Add(1)
	go func() {
		defer s.dials.Done()
		f()
	}()
	return true
}

func (s *Server) dial(addr netip.AddrPort, sess *engine.Session) error {
	if s.mux == nil {
		return s.dialTCP(addr, sess, false)
	}
	if s.hints.has(addr) {
		uerr := s.dialUTP(addr, sess)
		if uerr == nil || s.ctx.Err() != nil {
			return uerr
		}
		return s.dialTCP(addr, sess, false)
	}
	err := s.dialTCP(addr, sess, true)
	if err == nil || s.ctx.Err() != nil {
		return err
	}
	if uerr := s.dialUTP(addr, sess); uerr != nil {
		return fmt.Errorf("%w; over uTP: %w", err, uerr)
	}
	return nil
}

// halfOpenSlot waits for a slot under MaxHalfOpen; release gives it back.
func (s *Server) halfOpenSlot() (release func(), err error) {
	select {
	case s.halfOpen <- struct{}{}:
		return func() { <-s.halfOpen }, nil
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// dialTCP dials addr over TCP; with utpNext, a peer that hangs up before
// its handshake is dialed again over uTP (see Dial).
func (s *Server) dialTCP(addr netip.AddrPort, sess *engine.Session, utpNext bool) error {
	release, err := s.halfOpenSlot()
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout, KeepAlive: -1} // see listenConfig
	nc, err := d.DialContext(s.ctx, "tcp", addr.String())
	release()
	if err != nil {
		return fmt.Errorf("netio: dial %s: %w", addr, err)
	}
	pc := newPeerConn(s, addr, true)
	pc.sess = sess
	if utpNext {
		pc.silentHangup = func() bool {
			return s.goDial(func() {
				if err := s.dialUTP(addr, sess); err != nil {
					sess.DialFailed(addr, fmt.Errorf("netio: %s hung up at once over TCP; over uTP: %w", addr, err))
				}
			})
		}
	}
	pc.encrypt = s.dialEncrypted(addr)
	if !s.pending.add(pc, false) {
		nc.Close()
		return errors.New("netio: too many connections still handshaking")
	}
	if err := s.enroll(nc, pc); err != nil {
		return fmt.Errorf("netio: enroll %s: %w", addr, err)
	}
	return nil
}

// dialEncrypted is whether a dial to addr opens with MSE: always under
// require, under prefer unless it hung up on that before.
func (s *Server) dialEncrypted(addr netip.AddrPort) bool {
	switch s.cfg.Encryption {
	case EncryptionRequire:
		return true
	case EncryptionPrefer:
		return !s.plainPeers.has(addr)
	}
	return false
}

// redialPlain dials addr again in plaintext after it hung up on our
// encrypted handshake, and remembers to dial it so from now on; false when
// stopping (the caller then reports the dial failed).
func (s *Server) redialPlain(addr netip.AddrPort, sess *engine.Session) bool {
	if s.ctx.Err() != nil || s.plainPeers.has(addr) {
		return false
	}
	s.plainPeers.add(addr)
	s.Dial(addr, sess.InfoHash(), sess)
	return true
}

// skeyFor finds the infohash an incoming MSE handshake names by
// HASH('req2', infohash). Any goroutine.
func (s *Server) skeyFor(req2 [20]byte) ([20]byte, bool) {
	if sess := s.client.SessionByObfuscatedHash(req2); sess != nil {
		return sess.InfoHash(), true
	}
	return [20]byte{}, false
}

// addrSet is a bounded set of peer addresses; at its bound it starts over,
// which costs a forgotten peer one more encrypted attempt. Safe for
// concurrent use.
type addrSet struct {
	mu sync.Mutex
	m  map[netip.AddrPort]struct{}
}

const maxAddrSet = 1 << 16

func (a *addrSet) has(ap netip.AddrPort) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[ap]
	return ok
}

func (a *addrSet) add(ap netip.AddrPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil || len(a.m) >= maxAddrSet {
		a.m = map[netip.AddrPort]struct{}{}
	}
	a.m[ap] = struct{}{}
}

// enroll hands nc to an event loop, which then owns it; pc is already in
// the pending set and leaves it when the handshake ends or the loop closes
// the connection.
func (s *Server) enroll(nc net.Conn, pc *peerConn) error {
	// gnet duplicates the descriptor and closes nc.
	if _, err := s.loops.EnrollContext(nc, pc); err != nil {
		s.pending.remove(pc)
		return err
	}
	return nil
}

// OnOpen runs on the connection's event loop once gnet has it.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	pc, ok := c.Context().(*peerConn)
	if !ok || !pc.open(&gnetTransport{c}) {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

// OnTraffic decodes what arrived and hands it to the session.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	pc, ok := c.Context().(*peerConn)
	if !ok || pc.onTraffic() != nil {
		return gnet.Close
	}
	return gnet.None
}

// OnClose reports the closing to the session.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	if pc, ok := c.Context().(*peerConn); ok {
		pc.onClose(err)
	}
	return gnet.None
}

// gnetLogger routes gnet's log lines to Config.Logf, dropping its debug and
// info lines (a start-up banner on stdout broke `info -json`).
type gnetLogger struct{ logf func(string, ...any) }

func (gnetLogger) Debugf(string, ...any) {}
func (gnetLogger) Infof(string, ...any)  {}
func (l gnetLogger) Warnf(format string, args ...any) {
	l.logf("netio: gnet: "+format, args...)
}
func (l gnetLogger) Errorf(format string, args ...any) {
	l.logf("netio: gnet: "+format, args...)
}
func (l gnetLogger) Fatalf(format string, args ...any) {
	l.logf("netio: gnet: "+format, args...)
}
