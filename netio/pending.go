package netio

import (
	"container/list"
	"net/netip"
	"sync"
)

// pendingSet holds the connections that have not finished the handshake.
// They cost a descriptor and a loop slot but give nothing yet, so they are
// capped in total and per source address. At a cap the oldest inbound one
// goes, not the newcomer: a flood of idle connections then only ever pushes
// out its own older ones, while an honest peer, which handshakes within a
// round trip, gets through. Outbound ones (our own dials, already bounded
// by MaxHalfOpen) are counted but never evicted. Safe for concurrent use.
type pendingSet struct {
	mu      sync.Mutex
	max     int
	perIP   int
	n       int                // pending connections, both directions
	inbound list.List          // of *peerConn, oldest first
	byIP    map[netip.Addr]int // inbound pending per source address
}

func (ps *pendingSet) init(max, perIP int) {
	ps.max, ps.perIP = max, perIP
	ps.byIP = map[netip.Addr]int{}
}

func (ps *pendingSet) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.n
}

// add enters pc, evicting the oldest inbound connections the caps require;
// false when nothing could make room (every pending one is outbound).
func (ps *pendingSet) add(pc *peerConn, inbound bool) bool {
	var victims []*peerConn
	ps.mu.Lock()
	ip := pc.addr.Addr()
	if inbound && ps.byIP[ip] >= ps.perIP {
		for e := ps.inbound.Front(); e != nil; e = e.Next() {
			if v := e.Value.(*peerConn); v.addr.Addr() == ip {
				victims = append(victims, ps.drop(v))
				break
			}
		}
	}
	if ps.n >= ps.max {
		if e := ps.inbound.Front(); e != nil {
			victims = append(victims, ps.drop(e.Value.(*peerConn)))
		}
	}
	ok := ps.n < ps.max
	if ok {
		ps.n++
		pc.pending = true
		if inbound {
			pc.pendingAt = ps.inbound.PushBack(pc)
			ps.byIP[ip]++
		}
	}
	ps.mu.Unlock()
	for _, v := range victims {
		v.Close()
	}
	return ok
}

// remove takes pc out once its handshake is done or it closed; a no-op for
// a connection no longer pending.
func (ps *pendingSet) remove(pc *peerConn) {
	ps.mu.Lock()
	if pc.pending {
		ps.drop(pc)
	}
	ps.mu.Unlock()
}

// drop forgets pc. Caller holds mu; pc is pending.
func (ps *pendingSet) drop(pc *peerConn) *peerConn {
	pc.pending = false
	ps.n--
	if pc.pendingAt != nil {
		ps.inbound.Remove(pc.pendingAt)
		pc.pendingAt = nil
		ip := pc.addr.Addr()
		if ps.byIP[ip]--; ps.byIP[ip] <= 0 {
			delete(ps.byIP, ip)
		}
	}
	return pc
}
