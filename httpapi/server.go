// Package httpapi is the daemon's management API: the JSON-over-HTTP
// endpoints of the seed API spec, served by fasthttp over an engine.Client.
//
// Handlers read torrents only through published snapshots and change them
// only through the client's commands, so a slow or hostile API client can
// never stall a transfer.
package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// DefaultMaxBody bounds request bodies when Config.MaxBody is zero. Real
// .torrent files are far smaller; the limit only stops memory abuse.
const DefaultMaxBody = 10 << 20

// Server timeouts and limits. Reads get more time than a header needs so a
// 10 MiB .torrent can still arrive over a slow link.
const (
	readTimeout  = 60 * time.Second
	writeTimeout = 60 * time.Second
	idleTimeout  = 120 * time.Second
	concurrency  = 1024
	serverName   = "gotorrentserver"
)

// Config configures a Server.
type Config struct {
	Client *engine.Client
	// Addr is the listen address, host:port. Port 0 picks a free port.
	Addr string
	// Token is the bearer token every request must carry. Empty disables
	// authentication, which New allows only on a loopback Addr.
	Token string
	// DownloadRoot is an absolute folder; every download folder given to
	// the API must resolve inside it. Created if missing.
	DownloadRoot string
	// MaxBody bounds request bodies in bytes; 0 means DefaultMaxBody.
	MaxBody int
	// OnChange, if set, runs after every successful add, start, stop,
	// remove and rate change, on the request's goroutine (so concurrently
	// for concurrent requests), letting the daemon persist its state. It
	// must not block for long.
	OnChange func(ih metainfo.Hash)
	// Logf logs unexpected failures; default log.Printf.
	Logf func(format string, args ...any)
	// Now is the clock for the /alldata time field; default time.Now.
	Now func() time.Time
	// APIRate bounds, in bytes per second, what answers may send while
	// peers transfer (see pacer); each request also counts 256 KiB. Zero
	// means DefaultAPIRate, negative means no bound.
	APIRate int64
	// Busy reports whether peers are transferring; default: the client's
	// payload rates add up to at least 1 MiB/s.
	Busy func() bool

	// Connection limits. A connection is unproven until one of its
	// requests carries the token; requests without it get a 401 that
	// closes the connection.

	// MaxConns bounds the API's open connections, proven or not. Zero
	// means DefaultMaxConns (896): fasthttp serves at most 1,024 and
	// answers past that in text/plain, so the cap stays below with room
	// for connections being closed. At the cap, the oldest unproven
	// connection is closed for the new one; when every connection is
	// proven, the new one gets a JSON 503 with Retry-After instead. At
	// most DefaultMaxConns.
	MaxConns int
	// MaxUnprovenConns bounds unproven connections over all sources, so
	// clients without the token can hold at most this share of MaxConns.
	// Past it the oldest unproven connection is closed for the new one,
	// preferring one already answered (draining after its answer), then
	// one still silent, to one in the middle of a request. Zero means
	// MaxConns/8 (112 by default): room for many clients connecting at
	// once, each proving itself with its first request, while a flood
	// leaves 7/8 of the slots to token holders.
	MaxUnprovenConns int
	// MaxUnprovenConnsPerIP is the same cap per source address (IPv6:
	// per /64), evicting that source's oldest. Zero means
	// MaxUnprovenConns/8 (14 by default), a browser's worth of
	// simultaneous connections; one source cannot then take the whole
	// unproven share from the others.
	MaxUnprovenConnsPerIP int
	// HeaderTimeout is how long an unproven connection may take to send
	// its first request's headers before it is closed; the body then has
	// the usual 60 s. Zero means DefaultHeaderTimeout (5 s): headers are
	// one packet for any real client.
	HeaderTimeout time.Duration

	// GET /events streams (events.go). MaxEventStreams bounds the streams
	// open at once (0: DefaultMaxEventStreams; past it, a JSON 503 with
	// Retry-After); EventHeartbeat is how long a stream stays silent
	// before a comment line (0: DefaultEventHeartbeat); EventWriteTimeout
	// is how long a flush may wait for a reader before it is dropped (0:
	// DefaultEventWriteTimeout).
	MaxEventStreams   int
	EventHeartbeat    time.Duration
	EventWriteTimeout time.Duration

	// MetricsPerTorrent adds each torrent's series to /metrics (six per
	// torrent, labelled by infohash and name); off, /metrics has only the
	// totals, whose number does not grow with the torrents.
	MetricsPerTorrent bool
	// Version is what /stats reports as the daemon's version; default "dev".
	Version string
	// Started is when the daemon started, for /stats; default: New's time.
	Started time.Time

	// SessionLifetime is how long a browser session (POST /login's
	// cookie) lasts from sign-in, however active; 0 means
	// DefaultSessionLifetime (24 h).
	SessionLifetime time.Duration
	// Logs, if set, returns the daemon's recent log lines with an id
	// above after, oldest first, and the last id logged, for GET /logs
	// (see LogRing). Nil: /logs answers no lines.
	Logs func(after uint64) ([]LogLine, uint64)
}

// Server is the management API. Start, Addr and Shutdown may be called from
// any goroutine; Start at most once, and not after Shutdown.
type Server struct {
	cfg       Config
	tokenHash *[sha256.Size]byte // nil when authentication is off
	root      rootDir
	srv       *fasthttp.Server

	mu       sync.Mutex
	ln       *trackingListener
	serveErr chan error
	stopped  bool

	addrMu sync.Mutex // apart from mu, which Shutdown holds while waiting
	addr   string

	allMu    sync.Mutex                 // one /alldata build at a time
	allCache atomic.Pointer[cachedBody] // the last /alldata body

	listMu    sync.Mutex                 // one /torrents build at a time
	listCache atomic.Pointer[cachedBody] // the last /torrents body

	pacer *pacer
	stop  chan struct{} // closed by Shutdown: paced answers go at once

	conns *connTracker

	streamLim streamLimits
	streams   atomic.Int32 // open /events streams
	metrics   *metrics     // /metrics' registry and api_requests_total

	sessions *sessionStore // browser sign-ins (session.go)
	logins   *loginLimiter // failed /login attempts per source
}

// New checks cfg and builds a Server; nothing listens until Start.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, ErrNoClient
	}
	if cfg.Token == "" && !isLoopback(cfg.Addr) {
		return nil, fmt.Errorf("%w (addr %q)", ErrTokenRequired, cfg.Addr)
	}
	if err := checkToken(cfg.Token); err != nil {
		return nil, err
	}
	root, err := newRootDir(cfg.DownloadRoot)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.APIRate == 0 {
		cfg.APIRate = DefaultAPIRate
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	lim, err := resolveLimits(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Busy == nil {
		client := cfg.Client
		cfg.Busy = func() bool { d, u := client.PayloadRates(); return d+u >= busyRate }
	}
	s := &Server{cfg: cfg, root: root, stop: make(chan struct{}), conns: newConnTracker(lim, cfg.Logf),
		streamLim: resolveStreamLimits(cfg), metrics: newMetrics(cfg),
		sessions: newSessionStore(cfg.SessionLifetime), logins: newLoginLimiter()}
	s.pacer = newPacer(cfg.APIRate, cfg.Busy, time.Now, s.stop)
	if cfg.Token != "" {
		h := sha256.Sum256([]byte(cfg.Token))
		s.tokenHash = &h
	}
	s.srv = &fasthttp.Server{
		Handler:            s.serve,
		ErrorHandler:       s.readError,
		ExpectHandler:      s.expect,
		HeaderReceived:     s.headerReceived,
		Name:               serverName,
		ReadTimeout:        readTimeout,
		WriteTimeout:       writeTimeout,
		IdleTimeout:        idleTimeout,
		Concurrency:        concurrency,
		MaxRequestBodySize: cfg.MaxBody,
		// Multipart forms would otherwise be parsed (and spilled to disk)
		// before any handler could refuse them; the API takes raw bodies.
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{cfg.Logf},
	}
	return s, nil
}

// isLoopback reports whether addr binds only to a loopback interface. An
// empty host means every interface and is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkToken refuses tokens that cannot travel in a header unchanged.
func checkToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return ErrBadToken
		}
	}
	return nil
}

// Start listens on Config.Addr and serves in the background; it returns
// once the socket is listening.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.stopped {
		return ErrStarted
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen: %w", err)
	}
	s.ln = &trackingListener{Listener: ln, t: s.conns}
	s.addrMu.Lock()
	s.addr = ln.Addr().String()
	s.addrMu.Unlock()
	s.serveErr = make(chan error, 1)
	go s.conns.run()
	go func() { s.serveErr <- s.srv.Serve(s.ln) }()
	return nil
}

// Addr is the address the server listens on (with the real port when
// Config.Addr asked for port 0), or "" before Start.
func (s *Server) Addr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish. Later calls do nothing; the server cannot
// be started again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	close(s.stop)
	if s.ln == nil {
		return nil
	}
	// fasthttp closes only the listeners Serve has registered, and Serve,
	// on its own goroutine, may not have started yet: closed here, its
	// first Accept fails and it returns.
	lnErr := s.ln.Close()
	err := errors.Join(lnErr, s.srv.ShutdownWithContext(ctx))
	select {
	case serr := <-s.serveErr:
		if serr != nil && !errors.Is(serr, net.ErrClosed) {
			err = errors.Join(err, serr)
		}
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return err
}

// fasthttpLogger routes fasthttp's own messages to Config.Logf.
type fasthttpLogger struct{ logf func(string, ...any) }

// Printf drops failures of connections whose socket was closed under
// fasthttp: only the tracker (evicting or reaping) and Shutdown do that,
// and a flood would otherwise log a line per evicted connection.
func (l fasthttpLogger) Printf(format string, args ...any) {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, net.ErrClosed) {
			return
		}
	}
	l.logf("httpapi: "+format, args...)
}
