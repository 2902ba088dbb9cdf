package swarm

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/netio"
	"gotorrentserver/netio/utp"
)

// utpSocketBuffer is what each socket asks for each way, as our daemon
// does for its own: with the kernel's default 208 KiB a burst of a
// window's packets overflows the receiver, and every loss halves the
// sender's window. The kernel charges only what is queued.
const utpSocketBuffer = 4 << 20

// maxUTPSlots bounds a uTP swarm's dialed connections: a slot's alias
// (aliasOf) has 16 bits for it.
const maxUTPSlots = 1 << 16

// utpSockets are a uTP swarm's UDP sockets, one per dialed slot, and the
// Muxes (one per Config.Loops) that run their connections.
//
// A socket per connection, not one for all: libtorrent takes a peer's
// address and port for who it is, and closes a second connection from
// the same UDP port as a duplicate of the first. But a Mux sends on one
// socket, to the address it dialed; so each slot dials an alias of the
// target (aliasOf), the Muxes write through utpSockets, which sends from
// the slot's socket to the real target, and a socket's reader delivers
// what arrives as from the alias.
type utpSockets struct {
	target  netip.AddrPort
	muxes   []*utp.Mux
	socks   []atomic.Pointer[net.UDPConn] // by slot: the socket of its latest dial
	readers sync.WaitGroup
	mu      sync.Mutex // closed, and readers.Add against close's Wait
	closed  bool
}

// open starts the Muxes for slots dialed connections to target.
func (u *utpSockets) open(target netip.AddrPort, slots, loops int, dialTimeout time.Duration) {
	u.target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	u.socks = make([]atomic.Pointer[net.UDPConn], slots)
	for range loops {
		u.muxes = append(u.muxes, utp.NewMux(u, utp.Config{SynTimeouts: synTimeouts(dialTimeout)}))
	}
}

// aliasOf is the address slot i's connections are dialed at, which only
// the Muxes see: in 127.255.0.0/16, loopback like everything here.
func (u *utpSockets) aliasOf(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 255, byte(i >> 8), byte(i)}), u.target.Port())
}

func slotOf(alias netip.AddrPort) int {
	b := alias.Addr().As4()
	return int(b[2])<<8 | int(b[3])
}

func (u *utpSockets) mux(i int) *utp.Mux { return u.muxes[i%len(u.muxes)] }

// WriteToUDPAddrPort implements utp.Writer for the Muxes: a packet for a
// slot's alias leaves from that slot's socket for the target.
func (u *utpSockets) WriteToUDPAddrPort(b []byte, alias netip.AddrPort) (int, error) {
	i := slotOf(alias)
	if i >= len(u.socks) {
		return 0, net.ErrClosed
	}
	pc := u.socks[i].Load()
	if pc == nil {
		return 0, net.ErrClosed
	}
	return pc.WriteToUDPAddrPort(b, u.target)
}

// bind gives slot i a new socket on src, closing the one of its previous
// dial, whose connection has closed by now (a slot redials only then).
func (u *utpSockets) bind(i int, src netip.Addr) error {
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		return fmt.Errorf("swarm: utp socket: %w", err)
	}
	netio.SizeUDPBuffers(pc, utpSocketBuffer)
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		pc.Close()
		return utp.ErrClosed
	}
	u.readers.Add(1)
	old := u.socks[i].Swap(pc)
	u.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go u.read(i, pc)
	return nil
}

// read hands what the target sends to slot i's socket to its Mux, as from
// the slot's alias, until the socket closes.
func (u *utpSockets) read(i int, pc *net.UDPConn) {
	defer u.readers.Done()
	alias, mux := u.aliasOf(i), u.mux(i)
	buf := make([]byte, 4<<10) // a uTP packet is at most 1500 bytes
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) == u.target {
			mux.Deliver(buf[:n], alias)
		}
	}
}

// close ends every connection (each handler hears Closed), then the
// sockets and their readers.
func (u *utpSockets) close() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	for _, m := range u.muxes {
		m.Close()
	}
	for i := range u.socks {
		if pc := u.socks[i].Swap(nil); pc != nil {
			pc.Close()
		}
	}
	u.readers.Wait()
}

// synTimeouts is how many SYN timeouts (1 s, then doubling) fit in d, so
// that a uTP dial gives up about when a TCP dial would.
func synTimeouts(d time.Duration) int {
	n, total := 1, time.Second
	for total+time.Second<<n <= d && n < 5 {
		total += time.Second << n
		n++
	}
	return n
}

// dialUTP dials slot i over uTP from a socket of its own and waits until
// the peer answers the SYN (the connection then sends its handshake) or
// the dial fails.
func (s *Swarm) dialUTP(i int) error {
	if err := s.utp.bind(i, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i%s.cfg.SourceIPs)})); err != nil {
		return err
	}
	h := &utpHandler{c: s.newConn(i, s.torrents[i%len(s.torrents)], false), dialed: make(chan error, 1)}
	if err := s.utp.mux(i).Dial(s.utp.aliasOf(i), h); err != nil {
		return err
	}
	select {
	case err := <-h.dialed:
		return err
	case <-s.ctx.Done():
		// Stop closes the Mux, which ends the dial.
		return s.ctx.Err()
	}
}

// utpHandler drives a conn on its Mux's loop, as OnOpen, OnTraffic and
// OnClose do on gnet's.
type utpHandler struct {
	c      *conn
	dialed chan error // the dial's outcome, once
	opened bool
}

func (h *utpHandler) Opened(uc *utp.Conn) {
	h.opened = true
	c := h.c
	c.lk = utpLink{uc}
	c.sw.opened(c)
	c.lk.write(c.handshake())
	h.dialed <- nil
}

func (h *utpHandler) Readable(uc *utp.Conn) {
	n, err := h.c.consume(uc.Peek(uc.Buffered()))
	uc.Discard(n)
	if !h.c.turnDone(err) {
		uc.Close()
	}
}

// Closed: a dial that never connected is the dialer's to report.
func (h *utpHandler) Closed(_ *utp.Conn, err error) {
	if !h.opened {
		if err == nil {
			err = utp.ErrClosed
		}
		h.dialed <- err
		return
	}
	h.c.sw.closed(h.c)
}

// utpLink is a uTP connection; Write copies what it is given.
type utpLink struct{ uc *utp.Conn }

func (l utpLink) write(b []byte) { l.uc.Write([][]byte{b}) }
func (l utpLink) close()         { l.uc.Close() }

func (l utpLink) keepAlive() {
	l.uc.Do(func(err error) {
		if err == nil {
			l.uc.Write([][]byte{keepAliveMsg})
		}
	})
}
