package engine

import (
	"net/netip"
	"time"
)

// addrBook is every address the torrent may dial: learned from trackers,
// PEX, the DHT, the user or a connection we made, each with its redial
// backoff. It decides who is dialed next; the session does the dialing.
// Session-owned.
type addrBook struct {
	known map[netip.AddrPort]*knownPeer
}

// knownPeer is an address learned from a tracker, an incoming connection or
// the user, kept to redial with backoff.
type knownPeer struct {
	addr      netip.AddrPort
	connected bool
	dialing   bool
	failures  int
	nextDial  time.Time
	source    string
	lastPeer  *PeerSnapshot // what we knew when it was last connected
}

// maxKnownPeers bounds the address book so a tracker cannot grow it forever.
const maxKnownPeers = 2000

func newAddrBook() addrBook { return addrBook{known: map[netip.AddrPort]*knownPeer{}} }

// learn adds the addresses that dialable accepts, up to maxKnownPeers, and
// reports how many were new.
func (b *addrBook) learn(addrs []netip.AddrPort, source string, dialable func(netip.AddrPort) bool) int {
	added := 0
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if b.known[a] != nil || len(b.known) >= maxKnownPeers || !dialable(a) {
			continue
		}
		b.known[a] = &knownPeer{addr: a, source: source}
		added++
	}
	return added
}

// dialing counts the dials in flight.
func (b *addrBook) dialing() int {
	n := 0
	for _, k := range b.known {
		if k.dialing {
			n++
		}
	}
	return n
}

// candidates marks up to n addresses as dialing and returns them: those
// neither connected nor dialing whose backoff has passed and that skip
// does not exclude.
func (b *addrBook) candidates(now time.Time, n int, skip func(*knownPeer) bool) []netip.AddrPort {
	var out []netip.AddrPort
	for _, k := range b.known {
		if len(out) >= n {
			break
		}
		if k.connected || k.dialing || now.Before(k.nextDial) || skip(k) {
			continue
		}
		k.dialing = true
		out = append(out, k.addr)
	}
	return out
}

// dialFailed records a dial that produced no connection. busy means our
// own dial queue was full: not the peer's fault, so it is retried after
// jitter (1-5 s) without counting a failure.
func (b *addrBook) dialFailed(addr netip.AddrPort, busy bool, now time.Time, jitter time.Duration) {
	k := b.known[addr]
	if k == nil {
		return
	}
	k.dialing = false
	if busy {
		k.nextDial = now.Add(time.Second + jitter)
		return
	}
	k.failures++
	k.nextDial = now.Add(redialBackoff(k.failures))
}

// refused records that a connection we made was refused by the session
// (a duplicate, a limit, a ban): not worth redialing soon.
func (b *addrBook) refused(addr netip.AddrPort, now time.Time) {
	if k := b.known[addr]; k != nil {
		k.dialing = false
		k.nextDial = now.Add(redialBackoff(3))
	}
}

// connected records a connection to addr; one we dialed is remembered
// even if nobody told us of the address.
func (b *addrBook) connected(addr netip.AddrPort, outbound bool) {
	k := b.known[addr]
	if k == nil && outbound {
		k = &knownPeer{addr: addr, source: "dial"}
		b.known[addr] = k
	}
	if k != nil {
		k.connected, k.dialing, k.failures = true, false, 0
	}
}

// disconnected records that the connection to addr ended; last is what
// the API shows of it meanwhile.
func (b *addrBook) disconnected(addr netip.AddrPort, now time.Time, last *PeerSnapshot) {
	if k := b.known[addr]; k != nil {
		k.connected = false
		k.nextDial = now.Add(redialBackoff(1))
		k.lastPeer = last
	}
}

// nextDial is the earliest redial due before next; busy reports a dial in
// flight or a connection, which needs the session ticking.
func (b *addrBook) nextDial(next time.Time) (at time.Time, busy bool) {
	for _, k := range b.known {
		if k.dialing || k.connected {
			return next, true
		}
		if k.nextDial.Before(next) {
			next = k.nextDial
		}
	}
	return next, false
}

func redialBackoff(failures int) time.Duration {
	d := 30 * time.Second << min(failures-1, 5)
	return min(d, 15*time.Minute)
}
