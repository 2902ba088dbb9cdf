package netio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/engine/tracker"
)

// UDP is the daemon's one UDP socket, bound to the peer port's number on
// the peer listener's address, as libtorrent and Transmission do: the DHT,
// the UDP tracker client and uTP share it, so one port is opened
// in a firewall and forwarded by a router, and what a peer learns of our
// DHT port is our peer port.
//
// One reader goroutine demultiplexes each datagram by its first bytes:
//   - 'd' (a bencoded dict) is KRPC, for the DHT route;
//   - a first byte 0 and 8 bytes or more is a BEP 15 reply (action
//     uint32, transaction id uint32), for the tracker client that
//     registered that transaction id with Expect;
//   - a first byte type<<4 | 1 with type 0-4 is uTP (BEP 29), for the uTP
//     multiplexer (utp.Mux), which copies it into its own bounded inbox.
//
// Anything else, and anything for a route nobody holds, is dropped and
// counted. Routes have bounded queues: a consumer that falls behind loses
// datagrams, as it would on a socket of its own, and never holds up the
// reader or the other consumers. Writes go straight to the socket.
//
// Safe for concurrent use; mu guards the routes, trk locks itself.
type UDP struct {
	pc   *net.UDPConn
	done chan struct{} // closed when the reader has exited

	mu     sync.Mutex
	closed bool
	dht    *UDPRoute
	utp    func(b []byte, from netip.AddrPort) bool // utp.Mux.Deliver, nil without uTP
	trk    tracker.Waiters                          // BEP 15 replies, by transaction id
	// rcvBuf and sndBuf are the socket's buffer sizes as the kernel set
	// them (see SizeUDPBuffers).
	rcvBuf, sndBuf int

	stats udpCounters
}

// Queue bounds: a DHT node answers a few hundred queries a second at most
// (its per-IP limit drops the rest), so 512 datagrams is a second or more
// of backlog; a larger one would only age the replies past their senders'
// timeouts.
const (
	dhtQueue = 512
	// maxDatagram is the largest datagram routed: tracker replies are
	// capped at 8 KiB and KRPC and uTP fit a path MTU, so bigger ones are
	// junk and would pin 64 KiB each in a queue. One byte more is read so
	// that an oversized one is seen as such.
	maxDatagram = 16 << 10
)

// UDPStats counts datagrams by fate. Received = the routed ones + the
// dropped ones.
type UDPStats struct {
	Received   int64
	Tracker    int64 // handed to an expecting tracker announce
	DHT        int64 // queued for the DHT
	UTP        int64 // queued for uTP
	NoListener int64 // for a route nobody holds, or a transaction id nobody expects
	QueueFull  int64 // for a route whose consumer is behind
	Unknown    int64 // empty, oversized, or of no protocol we speak
}

type udpCounters struct {
	received, tracker, dht, utp, noListener, queueFull, unknown atomic.Int64
}

// listenUDP binds the UDP socket at addr (the peer listener's address and
// port) and starts its reader.
func listenUDP(addr netip.AddrPort) (*UDP, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("netio: udp: %w", err)
	}
	u := &UDP{pc: pc, done: make(chan struct{})}
	u.rcvBuf, u.sndBuf = SizeUDPBuffers(pc, socketBuffer)
	go u.readLoop()
	return u, nil
}

// LocalAddr is the socket's address. Any goroutine.
func (u *UDP) LocalAddr() net.Addr { return u.pc.LocalAddr() }

// Port is the socket's port, the peer port's number.
func (u *UDP) Port() uint16 { return u.pc.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// WriteToUDPAddrPort sends b to addr on the socket. Any goroutine.
func (u *UDP) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return u.pc.WriteToUDPAddrPort(b, addr)
}

// Stats returns the counters. Any goroutine.
func (u *UDP) Stats() UDPStats {
	c := &u.stats
	return UDPStats{Received: c.received.Load(), Tracker: c.tracker.Load(), DHT: c.dht.Load(), UTP: c.utp.Load(),
		NoListener: c.noListener.Load(), QueueFull: c.queueFull.Load(), Unknown: c.unknown.Load()}
}

// Expect routes the BEP 15 replies carrying txid to deliver, called on the
// reader goroutine (it must copy what it keeps and not block), until
// Forget. Implements tracker.Socket; any goroutine.
func (u *UDP) Expect(txid uint32, deliver func(pkt []byte, from netip.AddrPort)) bool {
	return u.trk.Expect(txid, deliver)
}

// Forget ends Expect(txid). Any goroutine.
func (u *UDP) Forget(txid uint32) { u.trk.Forget(txid) }

// DHT returns the route of KRPC datagrams, for a dht.Node's Config.Conn;
// nil if it is taken (one node per socket) or the socket is closed. Closing
// the route gives it back. Any goroutine.
func (u *UDP) DHT() *UDPRoute { return u.take(&u.dht, dhtQueue) }

// attachUTP routes uTP datagrams to deliver, called on the reader
// goroutine (it must copy what it keeps, and not block); false if uTP is
// attached already or the socket is closed.
func (u *UDP) attachUTP(deliver func(b []byte, from netip.AddrPort) bool) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.utp != nil {
		return false
	}
	u.utp = deliver
	return true
}

// detachUTP stops routing uTP datagrams; later ones count as having no
// listener.
func (u *UDP) detachUTP() {
	u.mu.Lock()
	u.utp = nil
	u.mu.Unlock()
}

// Buffers are the socket's receive and send buffer sizes as the kernel
// set them (Linux reports twice what it was asked, its bookkeeping
// included).
func (u *UDP) Buffers() (rcv, snd int) { return u.rcvBuf, u.sndBuf }

func (u *UDP) take(slot **UDPRoute, queue int) *UDPRoute {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || *slot != nil {
		return nil
	}
	r := &UDPRoute{u: u, slot: slot, q: make(chan datagram, queue), done: make(chan struct{})}
	*slot = r
	return r
}

// Close closes the socket and every route, and waits for the reader. Safe
// to call more than once, and on a nil *UDP.
func (u *UDP) Close() error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		<-u.done
		return nil
	}
	u.closed = true
	routes := []*UDPRoute{u.dht}
	u.utp = nil
	u.mu.Unlock()
	u.trk.Close()
	err := u.pc.Close()
	<-u.done
	for _, r := range routes {
		if r != nil {
			r.Close()
		}
	}
	return err
}

func (u *UDP) readLoop() {
	defer close(u.done)
	buf := make([]byte, maxDatagram+1)
	for {
		n, from, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (ICMP-induced on some systems): pause so a
			// persistent one cannot spin a core.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// A dual-stack socket reports IPv4 senders as mapped addresses;
		// every consumer compares them with plain IPv4 ones.
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		u.route(buf[:n], from)
	}
}

// route hands one datagram to its consumer or counts it dropped.
func (u *UDP) route(b []byte, from netip.AddrPort) {
	c := &u.stats
	c.received.Add(1)
	if len(b) == 0 || len(b) > maxDatagram {
		c.unknown.Add(1)
		return
	}
	switch {
	case b[0] == 'd':
		u.queue(&u.dht, b, from, &c.dht)
	case b[0] == 0 && len(b) >= 8:
		if !u.trk.Deliver(b, from) {
			c.noListener.Add(1)
			return
		}
		c.tracker.Add(1)
	case b[0]&0x0f == 1 && b[0]>>4 <= 4:
		u.mu.Lock()
		deliver := u.utp
		u.mu.Unlock()
		switch {
		case deliver == nil:
			c.noListener.Add(1)
		case deliver(b, from):
			c.utp.Add(1)
		default:
			c.queueFull.Add(1)
		}
	default:
		c.unknown.Add(1)
	}
}

// queue copies b onto the route in slot without waiting.
func (u *UDP) queue(slot **UDPRoute, b []byte, from netip.AddrPort, routed *atomic.Int64) {
	u.mu.Lock()
	r := *slot
	u.mu.Unlock()
	if r == nil {
		u.stats.noListener.Add(1)
		return
	}
	select {
	case r.q <- datagram{b: append([]byte(nil), b...), from: from}:
		routed.Add(1)
	default:
		u.stats.queueFull.Add(1)
	}
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// UDPRoute is one protocol's view of the shared socket: reads return the
// datagrams routed to it, writes go straight to the socket, and Close
// detaches it (the socket stays open for the others). It satisfies
// dht.PacketConn. Reads from one goroutine at a time; the rest from any.
type UDPRoute struct {
	u    *UDP
	slot **UDPRoute
	q    chan datagram
	once sync.Once
	done chan struct{}
}

// ReadFromUDPAddrPort waits for the next datagram routed here; one longer
// than b is truncated to len(b), as a socket would. After Close it fails
// with net.ErrClosed.
func (r *UDPRoute) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-r.q:
		return copy(b, d.b), d.from, nil
	case <-r.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WriteToUDPAddrPort sends b to addr on the shared socket.
func (r *UDPRoute) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-r.done:
		return 0, net.ErrClosed
	default:
	}
	return r.u.pc.WriteToUDPAddrPort(b, addr)
}

// LocalAddr is the shared socket's address.
func (r *UDPRoute) LocalAddr() net.Addr { return r.u.pc.LocalAddr() }

// Close detaches the route: later datagrams for it are dropped (counted
// as having no listener) and reads fail with net.ErrClosed. Idempotent.
func (r *UDPRoute) Close() error {
	r.once.Do(func() {
		r.u.mu.Lock()
		if *r.slot == r {
			*r.slot = nil
		}
		r.u.mu.Unlock()
		close(r.done)
	})
	return nil
}
