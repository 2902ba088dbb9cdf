package swarm

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gotorrentserver/netio/utp"
)

// maxUTPSockets bounds the UDP sockets (and Mux loops) of a uTP swarm:
// enough source addresses that a daemon's bound on one address's
// unfinished handshakes (ours: 32) does not throttle a dial storm, few
// enough that idle loops (a 10 ms tick each) cost the swarm little.
const maxUTPSockets = 16

// utpSocketBuffer is what each socket asks for each way, as our daemon
// does for its own: with the kernel's default 208 KiB a burst of a
// window's packets overflows the receiver, and every loss halves the
// sender's window.
const utpSocketBuffer = 4 << 20

// utpSocket is one UDP socket on its own source address and the Mux that
// runs its connections; a goroutine reads the socket into the Mux.
type utpSocket struct {
	pc  *net.UDPConn
	mux *utp.Mux
}

// utpSockets holds a swarm's sockets and their readers.
type utpSockets struct {
	socks   []*utpSocket
	readers sync.WaitGroup
}

// openUTP binds n sockets on 127.0.0.2 .. 127.0.0.(1+n).
func (u *utpSockets) open(n int, dialTimeout time.Duration) error {
	for k := range n {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + k)}), 0)
		pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		if err != nil {
			return fmt.Errorf("swarm: utp socket: %w", err)
		}
		sizeBuffers(pc, utpSocketBuffer)
		us := &utpSocket{pc: pc, mux: utp.NewMux(pc, utp.Config{SynTimeouts: synTimeouts(dialTimeout)})}
		u.socks = append(u.socks, us)
		u.readers.Add(1)
		go u.read(us)
	}
	return nil
}

// read hands the socket's datagrams to its Mux until the socket closes.
func (u *utpSockets) read(us *utpSocket) {
	defer u.readers.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := us.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		us.mux.Deliver(buf[:n], from)
	}
}

// close ends every connection (each handler hears Closed), then the
// sockets and their readers.
func (u *utpSockets) close() {
	for _, us := range u.socks {
		us.mux.Close()
	}
	for _, us := range u.socks {
		us.pc.Close()
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

// sizeBuffers sets pc's buffers to want bytes each way, past
// net.core.rmem_max/wmem_max where allowed (CAP_NET_ADMIN).
func sizeBuffers(pc *net.UDPConn, want int) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		s := int(fd)
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, want) != nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, want)
		}
	})
}

// dialUTP dials slot i over uTP from its socket and waits until the peer
// answers the SYN (the connection then sends its handshake) or the dial
// fails.
func (s *Swarm) dialUTP(i int) error {
	us := s.utp.socks[i%len(s.utp.socks)]
	h := &utpHandler{c: s.newConn(i, s.torrents[i%len(s.torrents)], false), dialed: make(chan error, 1)}
	if err := us.mux.Dial(s.cfg.Target, h); err != nil {
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
