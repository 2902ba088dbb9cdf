package tracker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
)

// Client announces to HTTP(S) and UDP trackers. One Client serves every
// torrent of the daemon: it owns the HTTP connection pool, its UDP sockets
// (or uses Config.Socket), the UDP connection-id cache and the concurrency
// bound. Its methods are safe for concurrent use; mu guards closed and the
// sockets.
type Client struct {
	cfg     Config
	hc      *http.Client
	conns   connCache
	closing chan struct{} // closed by Close: UDP waits end with ErrClosed

	mu     sync.Mutex
	closed bool
	udp4   *udpSocket
	udp6   *udpSocket
}

// maxRedirects is generous for load-balanced trackers yet stops loops early.
const maxRedirects = 5

// NewClient returns a Client; it opens no sockets of its own until an
// announce needs one that Config.Socket cannot give.
func NewClient(cfg Config) *Client {
	cfg = cfg.withDefaults()
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		hc = &http.Client{
			Transport: tr,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return fmt.Errorf("%w: more than %d redirects", ErrBadResponse, maxRedirects)
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("%w: redirect to %q", ErrUnsupportedScheme, req.URL.Scheme)
				}
				return nil
			},
		}
	}
	return &Client{cfg: cfg, hc: hc, closing: make(chan struct{})}
}

// Announce contacts the tracker at rawURL (http, https or udp) and blocks
// until it answers, fails, or ctx ends. Safe to call from any number of
// goroutines, but never from a session loop or event loop: the engine runs
// announces as jobs on a bounded lane, which also bounds how many run at
// once.
//
// The caller enforces private-torrent rules: this contacts exactly rawURL.
func (c *Client) Announce(ctx context.Context, rawURL string, req AnnounceRequest) (AnnounceResponse, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return AnnounceResponse{}, ErrClosed
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	switch u.Scheme {
	case "http", "https":
		return httpAnnounce(ctx, c.hc, &c.cfg, rawURL, req)
	case "udp":
		return c.udpAnnounce(ctx, rawURL, req)
	default:
		return AnnounceResponse{}, fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
}

// Close closes the client's own UDP sockets (not Config.Socket), making
// UDP announces in progress fail with ErrClosed. HTTP requests in progress
// are not interrupted: callers cancel their contexts first to speed this
// up. Later announces fail with ErrClosed. Safe to call from any
// goroutine, more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	socks := []*udpSocket{c.udp4, c.udp6}
	c.udp4, c.udp6 = nil, nil
	c.mu.Unlock()
	for _, s := range socks {
		if s != nil {
			s.close()
		}
	}
	if tr, ok := c.hc.Transport.(*http.Transport); ok && c.cfg.HTTPClient == nil {
		tr.CloseIdleConnections()
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// socketFor returns Config.Socket when it reaches the family, else the
// client's own socket of the family, opened on first use; an announce to
// an IPv6 tracker on a host without IPv6 fails here.
func (c *Client) socketFor(v4 bool) (Socket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if sh := c.cfg.Socket; sh != nil && reaches(sh.LocalAddr(), v4) {
		return sh, nil
	}
	slot, network := &c.udp6, "udp6"
	if v4 {
		slot, network = &c.udp4, "udp4"
	}
	if *slot == nil {
		s, err := openUDPSocket(network)
		if err != nil {
			return nil, err
		}
		*slot = s
	}
	return *slot, nil
}

// reaches tells whether a socket bound to local can send to the family:
// one bound to an address speaks its family only, except that [::] is
// dual-stack (how Go binds "0.0.0.0" or "" for network "udp").
func reaches(local net.Addr, v4 bool) bool {
	ua, ok := local.(*net.UDPAddr)
	if !ok {
		return false
	}
	a := ua.AddrPort().Addr()
	if a.Is6() && !a.Is4In6() && a.IsUnspecified() {
		return true
	}
	return a.Unmap().Is4() == v4
}
