package tracker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// Socket is a UDP socket the client shares with others: netio's, on the
// peer port's number, which also carries the DHT and uTP, as in libtorrent
// and Transmission. The client writes its requests to it, and registers the
// transaction id of each before sending, so that the socket's reader hands
// it the replies carrying that id. Implementations are safe for concurrent
// use.
type Socket interface {
	// Expect has deliver called, on the socket's reader goroutine, with
	// every datagram whose BEP 15 transaction id (bytes 4-8) is txid,
	// until Forget(txid). deliver must copy what it keeps and never
	// block. False when txid is already expected or the socket is closed.
	Expect(txid uint32, deliver func(pkt []byte, from netip.AddrPort)) bool
	Forget(txid uint32)
	WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error)
	LocalAddr() net.Addr
}

// udpSocket is a socket of the client's own, for a family the shared
// Socket cannot reach (or when there is none: tests, embedders). One
// reader goroutine hands each datagram to the announce waiting on its
// transaction id, so thousands of torrents cost one file descriptor and
// one goroutine. It implements Socket.
type udpSocket struct {
	pc *net.UDPConn
	Waiters
	done chan struct{}
}

var errAttemptTimeout = errors.New("tracker: udp attempt timed out")

func openUDPSocket(network string) (*udpSocket, error) {
	pc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("tracker: udp socket: %w", err)
	}
	s := &udpSocket{pc: pc, done: make(chan struct{})}
	go s.readLoop()
	return s, nil
}

func (s *udpSocket) readLoop() {
	defer close(s.done)
	buf := make([]byte, maxUDPReply+1) // see udpWaiter.deliver
	for {
		n, from, err := s.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. ICMP-induced) errors: pause so a persistent
			// one cannot spin a core.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.Deliver(buf[:n], from)
	}
}

func (s *udpSocket) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return s.pc.WriteToUDPAddrPort(b, to)
}

func (s *udpSocket) LocalAddr() net.Addr { return s.pc.LocalAddr() }

func (s *udpSocket) close() {
	s.Waiters.Close()
	s.pc.Close()
	<-s.done
}

// udpWaiter collects the replies to one attempt. Its channel is small:
// one answer is all an attempt needs, and a flood of forged ones must not
// cost memory or block the socket's reader.
type udpWaiter struct {
	from netip.AddrPort // replies from anywhere else are spoofed or stray
	ch   chan []byte
}

func (w *udpWaiter) deliver(pkt []byte, from netip.AddrPort) {
	// Readers read one byte more than we accept, so an oversized datagram
	// shows up as too long instead of being truncated into a valid reply.
	if len(pkt) > maxUDPReply || from.Addr().Unmap() != w.from.Addr() || from.Port() != w.from.Port() {
		return
	}
	select {
	case w.ch <- append([]byte(nil), pkt...):
	default: // waiter already has more than it will read
	}
}

// roundTrip sends the packet built for a fresh transaction id and waits up
// to wait for a reply accepted by parse. parse returns match=false for
// packets to ignore. Each retransmission gets a new transaction id, so a
// reply to an abandoned attempt is simply dropped.
func (c *Client) roundTrip(ctx context.Context, sock Socket, to netip.AddrPort, wait time.Duration,
	build func(txid uint32) []byte, parse func(pkt []byte, txid uint32) (bool, error)) error {
	w := &udpWaiter{from: to, ch: make(chan []byte, 4)}
	txid := rand.Uint32()
	for tries := 0; !sock.Expect(txid, w.deliver); tries++ {
		if c.isClosed() || tries >= 64 {
			return ErrClosed
		}
		txid = rand.Uint32()
	}
	defer sock.Forget(txid)

	if _, err := sock.WriteToUDPAddrPort(build(txid), to); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("tracker: udp send: %v", err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case pkt := <-w.ch:
			if match, err := parse(pkt, txid); match {
				return err
			}
		case <-timer.C:
			return errAttemptTimeout
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		}
	}
}

// udpAnnounce runs the BEP 15 connect/announce exchange with retransmission.
// The attempt counter n is shared by both steps as the spec describes, and
// the whole exchange is bounded by UDPConfig.MaxTotal.
func (c *Client) udpAnnounce(ctx context.Context, rawURL string, req AnnounceRequest) (AnnounceResponse, error) {
	target, err := parseUDPURL(rawURL)
	if err != nil {
		return AnnounceResponse{}, err
	}
	// The budget covers name resolution too: a slow resolver is as dead as
	// a silent tracker from the session's point of view.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.UDP.MaxTotal)
	defer cancel()
	addr, err := resolveTracker(ctx, target)
	if err != nil {
		return AnnounceResponse{}, err
	}
	sock, err := c.socketFor(addr.Addr().Is4())
	if err != nil {
		return AnnounceResponse{}, err
	}
	v6 := !addr.Addr().Is4()
	retriedStale := false
	for n := 0; n <= c.cfg.UDP.MaxRetries; n++ {
		wait := retransmitWait(c.cfg.UDP, n)
		connID, cached := c.conns.get(addr, c.cfg.Now())
		if !cached {
			err = c.roundTrip(ctx, sock, addr, wait, buildConnect, func(p []byte, txid uint32) (bool, error) {
				id, match, err := parseConnectReply(p, txid)
				connID = id
				return match, err
			})
			if errors.Is(err, errAttemptTimeout) {
				continue
			}
			if err != nil {
				return AnnounceResponse{}, udpError(parent, err)
			}
			c.conns.put(addr, connID, c.cfg.Now())
		}
		var out AnnounceResponse
		err = c.roundTrip(ctx, sock, addr, wait, func(txid uint32) []byte {
			return buildAnnounce(connID, txid, req, target.urlData)
		}, func(p []byte, txid uint32) (bool, error) {
			r, match, err := parseUDPAnnounceReply(p, txid, v6)
			out = r
			return match, err
		})
		switch {
		case err == nil:
			return out, nil
		case errors.Is(err, errAttemptTimeout):
			// Silence may mean the tracker restarted and drops our id;
			// reconnecting costs one 16-byte exchange.
			c.conns.forget(addr)
		case errors.Is(err, ErrTrackerFailure) && cached && !retriedStale:
			// Trackers that do answer a stale id answer with an error;
			// retry once with a fresh id before believing it.
			c.conns.forget(addr)
			retriedStale = true
			n--
		default:
			return AnnounceResponse{}, udpError(parent, err)
		}
	}
	return AnnounceResponse{}, fmt.Errorf("%w: udp tracker %s gave no answer after %d attempts", ErrTimeout, addr, c.cfg.UDP.MaxRetries+1)
}

// retransmitWait is BaseTimeout·2^n, capped at MaxTotal without ever
// overflowing whatever MaxRetries is configured.
func retransmitWait(cfg UDPConfig, n int) time.Duration {
	wait := cfg.BaseTimeout
	for ; n > 0 && wait < cfg.MaxTotal && wait <= math.MaxInt64/2; n-- {
		wait *= 2
	}
	return min(wait, cfg.MaxTotal)
}

// udpError turns the budget deadline into ErrTimeout while passing the
// caller's own cancellation through.
func udpError(parent context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("tracker: udp: %w", perr)
		}
		return fmt.Errorf("%w: udp exchange exceeded its time budget", ErrTimeout)
	}
	return err
}

// resolveTracker picks the address to use, preferring IPv4 since a v4
// socket and 6-byte peers are what every UDP tracker supports.
func resolveTracker(ctx context.Context, t udpTarget) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(t.host); err == nil {
		return netip.AddrPortFrom(a.Unmap().WithZone(""), t.port), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", t.host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %v", ErrResolve, err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() {
			return netip.AddrPortFrom(a, t.port), nil
		}
		if !v6.IsValid() {
			v6 = a
		}
	}
	if !v6.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%w: %s has no addresses", ErrResolve, t.host)
	}
	return netip.AddrPortFrom(v6.WithZone(""), t.port), nil
}
