// Package netio owns every peer socket, multiplexed on gnet event loops. It
// frames and decodes peer-wire messages and hands them to the engine's
// sessions; it never blocks an event loop and never touches session state.
package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	ListenAddr  string        // host:port for peers; default "0.0.0.0:6881"
	DialTimeout time.Duration // default 10 s
	MaxHalfOpen int           // outbound dials in progress at once; default 64
	Loops       int           // event loops; default one per core
	// FramesPerWake bounds the frames decoded per connection per wake-up, so
	// one fast peer cannot starve the others on its loop; default 128.
	FramesPerWake int
	// HandshakeTimeout closes connections that have not completed the
	// handshake in time; default 20 s.
	HandshakeTimeout time.Duration
	// DHT sets the BEP 5 reserved bit in our handshakes (we run a node).
	DHT bool
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
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if c.FramesPerWake <= 0 {
		c.FramesPerWake = 128
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 20 * time.Second
	}
}

// Server is the gnet engine for all peer connections. Start and Stop may be
// called from any goroutine; Dial is safe for concurrent use.
type Server struct {
	gnet.BuiltinEventEngine
	cfg      Config
	client   *engine.Client
	eng      gnet.Engine
	halfOpen chan struct{}
	booted   chan struct{}
	bootOnce sync.Once
	done     chan error
	addr     net.Addr
	ctx      context.Context
	cancel   context.CancelFunc
	dials    sync.WaitGroup
}

// New creates a server for client and installs itself as its dialer.
func New(client *engine.Client, cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, client: client, halfOpen: make(chan struct{}, cfg.MaxHalfOpen),
		booted: make(chan struct{}), done: make(chan error, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	client.SetDialer(s)
	return s
}

// Start listens and runs the event loops; it returns once they are ready.
func (s *Server) Start() error {
	// Bind first so a busy port is reported here, then hand the port to gnet
	// (which would otherwise fail only inside its own goroutine).
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("netio: listen: %w", err)
	}
	s.addr = ln.Addr()
	ln.Close()
	go func() {
		s.done <- gnet.Run(s, "tcp://"+s.addr.String(),
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.cfg.Loops),
			// Register (used to enroll our own dials) needs a balancer other
			// than round robin.
			gnet.WithLoadBalancing(gnet.LeastConnections),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTicker(true),
			gnet.WithReadBufferCap(256<<10),
			gnet.WithLogLevel(logging.WarnLevel), // its per-start banner is noise in our logs
		)
	}()
	select {
	case <-s.booted:
		return nil
	case err := <-s.done:
		return fmt.Errorf("netio: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("netio: event loops did not start")
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Port is the listening port.
func (s *Server) Port() uint16 {
	if ap, err := netip.ParseAddrPort(s.addr.String()); err == nil {
		return ap.Port()
	}
	return 0
}

// Stop closes every connection and stops the event loops.
func (s *Server) Stop() error {
	s.cancel()
	s.dials.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// gnet's Engine.Stop looks for the end only every 500 ms, which was
	// half of every `get` run's exit. gnet.Run returning is the end itself.
	stopped := make(chan error, 1)
	go func() { stopped <- s.eng.Stop(ctx) }()
	select {
	case <-s.done:
		return nil
	case err := <-stopped:
		return err
	}
}

// OnBoot is gnet's start callback. It runs before the event loops are
// registered, so readiness is signalled by the first OnTick instead.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	return gnet.None
}

// OnTick first fires once every event loop is running: only then may dials
// be enrolled (gnet's Register reads the loop table without a lock).
func (s *Server) OnTick() (time.Duration, gnet.Action) {
	s.bootOnce.Do(func() { close(s.booted) })
	return time.Hour, gnet.None
}

// Dial connects to addr for the torrent ih in the background: a dial with a
// timeout under the half-open limit, then the connection is enrolled on an
// event loop, which sends our handshake. Failures go to s.DialFailed.
// Implements engine.Dialer; safe for concurrent use.
func (s *Server) Dial(addr netip.AddrPort, ih metainfo.Hash, sess *engine.Session) {
	s.dials.Add(1)
	go func() {
		defer s.dials.Done()
		if err := s.dial(addr, ih, sess); err != nil {
			sess.DialFailed(addr, err)
		}
	}()
}

func (s *Server) dial(addr netip.AddrPort, ih metainfo.Hash, sess *engine.Session) error {
	select {
	case s.halfOpen <- struct{}{}:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	nc, err := d.DialContext(s.ctx, "tcp", addr.String())
	<-s.halfOpen
	if err != nil {
		return fmt.Errorf("netio: dial %s: %w", addr, err)
	}
	pc := newPeerConn(s, addr, true)
	pc.ih, pc.sess = ih, sess
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), pc), nc)
	res, err := s.eng.Register(ctx)
	if err != nil {
		nc.Close()
		return fmt.Errorf("netio: enroll %s: %w", addr, err)
	}
	select {
	case r := <-res:
		if r.Err != nil {
			return fmt.Errorf("netio: enroll %s: %w", addr, r.Err)
		}
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	return nil
}

// OnOpen runs on the connection's event loop for accepted and enrolled
// connections alike; an outbound one already carries its peerConn.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	pc, ok := c.Context().(*peerConn)
	if !ok {
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		pc = newPeerConn(s, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), false)
		c.SetContext(pc)
	}
	pc.open(c)
	if pc.outbound {
		return pc.handshakeBytes(pc.ih), gnet.None
	}
	return nil, gnet.None
}

// OnTraffic decodes what arrived and hands it to the session.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	pc, ok := c.Context().(*peerConn)
	if !ok {
		return gnet.Close
	}
	return pc.onTraffic()
}

// OnClose reports the closing to the session.
func (s *Server) OnClose(c gnet.Conn, err error) gnet.Action {
	if pc, ok := c.Context().(*peerConn); ok {
		pc.onClose(err)
	}
	return gnet.None
}
