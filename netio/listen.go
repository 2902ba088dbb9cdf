package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// listener is the peer port. Accepting is ours rather than gnet's: gnet's
// acceptor ends its main reactor on the first EMFILE, which closed the peer
// port for good while the API still said seeding. Go's net.Listen also sets
// SO_REUSEADDR, so a restart rebinds at once despite TIME_WAIT sockets.
// Its fields are guarded by mu; accept runs on the accept loop only.
type listener struct {
	mu   sync.Mutex
	ln   *net.TCPListener
	addr net.Addr // fixed after open: a reopen binds the same address
}

// bindTries bounds the ports tried when the port is left to the kernel
// and the one it gives TCP is taken for UDP.
const bindTries = 16

// bind opens the peer port, then the UDP socket on its address and port
// number, as libtorrent and Transmission do (one port to open or forward).
func (s *Server) bind() error {
	var uerr error
	for try := 0; try < bindTries; try++ {
		if err := s.ln.open(s.cfg.ListenAddr); err != nil {
			return err
		}
		ap := s.ln.addr.(*net.TCPAddr).AddrPort()
		s.udp, uerr = listenUDP(ap)
		if uerr == nil {
			// Linux reports twice what it granted.
			if rcv, snd := s.udp.Buffers(); rcv < socketBuffer || snd < socketBuffer {
				s.cfg.Logf("netio: udp: the kernel gave the UDP socket %d and %d bytes of buffers, not %d: uTP will lose packets at high rates (raise net.core.rmem_max and wmem_max, or run with CAP_NET_ADMIN)",
					rcv/2, snd/2, socketBuffer)
			}
			return nil
		}
		if _, port, _ := net.SplitHostPort(s.cfg.ListenAddr); port != "0" || try == bindTries-1 {
			break
		}
		s.ln.close()
	}
	if s.cfg.UDPRequired {
		s.ln.close()
		return uerr
	}
	s.cfg.Logf("%v: UDP trackers will use sockets of their own", uerr)
	return nil
}

// listenConfig turns off Go's default TCP keep-alive (a probe every 15 s
// per idle connection): the peer protocol has its own keep-alives and idle
// timeout, and with 10,000 idle peers the probes doubled the idle CPU.
var listenConfig = net.ListenConfig{KeepAlive: -1}

func (l *listener) open(addr string) error {
	ln, err := listenConfig.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("netio: listen: %w", err)
	}
	l.mu.Lock()
	l.ln, l.addr = ln.(*net.TCPListener), ln.Addr()
	l.mu.Unlock()
	return nil
}

// reopen binds the address the listener had, after it failed.
func (l *listener) reopen() error {
	l.mu.Lock()
	old, addr := l.ln, l.addr
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	ln, err := listenConfig.Listen(context.Background(), "tcp", addr.String())
	if err != nil {
		return fmt.Errorf("netio: reopen %s: %w", addr, err)
	}
	l.mu.Lock()
	l.ln = ln.(*net.TCPListener)
	l.mu.Unlock()
	return nil
}

func (l *listener) current() *net.TCPListener {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ln
}

func (l *listener) close() {
	if ln := l.current(); ln != nil {
		ln.Close()
	}
}

// Accept back-off bounds: out of descriptors, the loop retries from 5 ms up
// to 1 s, so it neither spins nor stays deaf long after descriptors free up.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	reopenBackoffMax = 5 * time.Second
)

// acceptLoop accepts until Stop. Running out of descriptors pauses it (the
// connection waits in the kernel's backlog); a failed listener is reported
// and reopened on the same address.
func (s *Server) acceptLoop() {
	defer s.accepts.Done()
	var delay time.Duration
	for {
		ln := s.ln.current()
		nc, err := ln.AcceptTCP()
		if err == nil {
			delay = 0
			s.admit(nc)
			continue
		}
		if s.ctx.Err() != nil {
			return
		}
		if transientAccept(err) {
			continue
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		if outOfDescriptors(err) {
			s.outOfDescriptors(err)
			if !s.sleep(delay) {
				return
			}
			continue
		}
		s.troubled.CompareAndSwap(0, time.Now().UnixNano())
		msg := fmt.Sprintf("peer port %s failed (%v): reopening it", s.ln.addr, err)
		s.cfg.Logf("netio: %s", msg)
		s.setListenError(msg)
		for {
			if !s.sleep(delay) {
				return
			}
			rerr := s.ln.reopen()
			if rerr == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.setListenError(fmt.Sprintf("peer port %s is closed: %v; retrying", s.ln.addr, rerr))
			delay = min(2*delay, reopenBackoffMax)
		}
	}
}

// scarceFor is how long after descriptors last ran out enrolling keeps
// spending the spare descriptor (see spareFD).
const scarceFor = 10 * time.Second

// outOfDescriptors records that accept, or gnet's dup of an accepted
// socket, found no descriptor free: the listener's status says so (once
// per episode) and enrolling spends the spare for a while.
func (s *Server) outOfDescriptors(err error) {
	now := time.Now()
	s.scarceUntil.Store(now.Add(scarceFor).UnixNano())
	if s.troubled.CompareAndSwap(0, now.UnixNano()) {
		msg := fmt.Sprintf("peer port %s: out of file descriptors (%v): new peers wait until some close", s.ln.addr, err)
		s.cfg.Logf("netio: %s", msg)
		s.setListenError(msg)
	}
}

// accepting records that a connection was accepted and enrolled: whatever
// the listener's trouble was, it is over.
func (s *Server) accepting() {
	if since := s.troubled.Swap(0); since != 0 {
		s.cfg.Logf("netio: accepting peers again after %v", time.Since(time.Unix(0, since)).Round(time.Millisecond))
		s.setListenError("")
	}
}

// sleep waits d or until Stop; false means stop.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// transientAccept: the connection died in the backlog; the listener is fine.
func transientAccept(err error) bool {
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EPROTO) || errors.Is(err, context.Canceled)
}

// admit decides about a new inbound connection before it costs a loop
// anything: banned addresses and connections past the peer limit are closed
// at once; the rest wait for their handshake in the pending set, and are
// handed to a loop on a goroutine of their own (bounded by the pending
// set), so that accepting goes on while a loop registers them: enrolling
// one at a time had doubled the time 10,000 peers took to connect.
func (s *Server) admit(nc *net.TCPConn) {
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		nc.Close()
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if s.client.Banned(ap) {
		nc.Close()
		return
	}
	used, limit := s.client.PeerSlots()
	if used+s.pending.len() >= limit {
		nc.Close()
		return
	}
	pc := newPeerConn(s, ap, false)
	if !s.pending.add(pc, true) {
		nc.Close()
		return
	}
	s.accepts.Add(1)
	go func() {
		defer s.accepts.Done()
		var err error
		if time.Now().UnixNano() < s.scarceUntil.Load() {
			err = s.spare.spend(func() error { return s.enroll(nc, pc) })
		} else {
			err = s.enroll(nc, pc)
		}
		switch {
		case err == nil:
			s.accepting()
		case s.ctx.Err() != nil:
		case outOfDescriptors(err):
			// Accept took the last descriptor and the dup found none.
			s.outOfDescriptors(err)
		default:
			s.cfg.Logf("netio: enroll inbound %s: %v", ap, err)
		}
	}()
}

// spareFD is one descriptor held in reserve. While descriptors are scarce,
// accept can take the last free one and gnet's dup then fails, closing a
// connection we had already accepted (an honest peer, reset just as the
// flood that exhausted us ended); giving the spare back for the dup keeps
// it. Safe for concurrent use.
type spareFD struct {
	mu sync.Mutex
	fd int // -1 while spent
}

func (r *spareFD) take() {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	r.fd = fd
}

// spend frees the spare for the length of f, then takes it back if it can.
func (r *spareFD) spend(f func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		syscall.Close(r.fd)
	}
	err := f()
	r.take()
	return err
}

func (r *spareFD) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		syscall.Close(r.fd)
		r.fd = -1
	}
}
