package netio

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/utp"
)

var errPendingFull = errors.New("netio: too many connections still handshaking")

// dialUTP dials addr over uTP and waits, holding a half-open slot, until
// the peer answers our SYN or UTPFallback passes. The connection is
// pending from the SYN on: half-open uTP connections count against the
// same bound as TCP's unfinished handshakes.
func (s *Server) dialUTP(addr netip.AddrPort, sess *engine.Session) error {
	release, err := s.halfOpenSlot()
	if err != nil {
		return err
	}
	defer release()
	pc := newPeerConn(s, addr, true)
	pc.sess = sess
	pc.encrypt = s.dialEncrypted(addr)
	if !s.pending.add(pc, false) {
		return errPendingFull
	}
	t := &utpTransport{pc: pc, local: s.udp.LocalAddr(), dialed: make(chan error, 1)}
	if err := s.mux.Dial(addr, t); err != nil {
		s.pending.remove(pc)
		return fmt.Errorf("netio: utp dial %s: %w", addr, err)
	}
	select {
	case err = <-t.dialed:
	case <-s.ctx.Done():
		// Stop closes the Mux next, which ends the dial.
		err = s.ctx.Err()
	}
	if err != nil {
		s.pending.remove(pc)
		return fmt.Errorf("netio: utp dial %s: %w", addr, err)
	}
	return nil
}

// acceptUTP decides about an inbound uTP SYN, on the Mux's loop, as admit
// does for a TCP connection: banned addresses and SYNs past the peer
// limit are ignored; the rest wait for their handshake in the pending set,
// where a flood of SYNs only pushes out its own older ones.
func (s *Server) acceptUTP(from netip.AddrPort) utp.Handler {
	if s.client.Banned(from) {
		return nil
	}
	used, limit := s.client.PeerSlots()
	if used+s.pending.len() >= limit {
		return nil
	}
	pc := newPeerConn(s, from, false)
	if !s.pending.add(pc, true) {
		return nil
	}
	return &utpTransport{pc: pc, local: s.udp.LocalAddr()}
}

// synTimeouts is how many SYN timeouts (1 s, then doubling) fit in d.
func synTimeouts(d time.Duration) int {
	n, total := 1, time.Second
	for total < d && n < 5 {
		n++
		total += time.Second << (n - 1)
	}
	return n
}

// PreferUTP records that addr speaks uTP (a PEX message flagged it), so
// that it is dialed over uTP first. Implements engine.UTPHints; any
// goroutine.
func (s *Server) PreferUTP(addr netip.AddrPort) { s.hints.add(addr) }

// utpHints is a bounded set of addresses known to speak uTP. Safe for
// concurrent use.
type utpHints struct {
	mu sync.Mutex
	m  map[netip.AddrPort]struct{}
}

// maxHints bounds the set: PEX brings at most 50 peers a minute per
// connection, and forgetting a hint only costs a TCP try first.
const maxHints = 4096

func (h *utpHints) add(a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[netip.AddrPort]struct{}{}
	}
	if len(h.m) >= maxHints {
		for k := range h.m {
			delete(h.m, k) // an arbitrary one: map order is random
			break
		}
	}
	h.m[a] = struct{}{}
}

func (h *utpHints) has(a netip.AddrPort) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.m[a]
	return ok
}
