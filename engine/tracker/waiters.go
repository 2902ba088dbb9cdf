package tracker

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// MaxWaiters bounds the transaction ids expected at once on one socket.
// The engine runs at most a few dozen announces at a time; the bound is
// for a misbehaving caller, not for a tracker, which cannot add ids.
const MaxWaiters = 4096

// Waiters is the table a UDP socket's reader consults to hand a BEP 15
// reply to the announce waiting on its transaction id. Both sockets that
// carry announces use it: the shared one netio owns and the client's own
// fallback. The zero value is ready. Safe for concurrent use.
type Waiters struct {
	mu     sync.Mutex
	m      map[uint32]func([]byte, netip.AddrPort)
	closed bool
}

// Expect implements Socket.Expect: false when txid is already expected,
// MaxWaiters are, or the table is closed.
func (w *Waiters) Expect(txid uint32, deliver func(pkt []byte, from netip.AddrPort)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.m[txid] != nil || len(w.m) >= MaxWaiters {
		return false
	}
	if w.m == nil {
		w.m = make(map[uint32]func([]byte, netip.AddrPort))
	}
	w.m[txid] = deliver
	return true
}

// Forget implements Socket.Forget.
func (w *Waiters) Forget(txid uint32) {
	w.mu.Lock()
	delete(w.m, txid)
	w.mu.Unlock()
}

// Deliver hands pkt to the announce expecting its transaction id, on the
// caller's (the reader's) goroutine, and reports whether one did.
func (w *Waiters) Deliver(pkt []byte, from netip.AddrPort) bool {
	if len(pkt) < 8 {
		return false
	}
	w.mu.Lock()
	deliver := w.m[binary.BigEndian.Uint32(pkt[4:8])]
	w.mu.Unlock()
	if deliver == nil {
		return false
	}
	deliver(pkt, from)
	return true
}

// Close forgets every id and refuses new ones.
func (w *Waiters) Close() {
	w.mu.Lock()
	w.closed = true
	w.m = nil
	w.mu.Unlock()
}
