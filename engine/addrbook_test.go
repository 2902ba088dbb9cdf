package engine

import (
	"net/netip"
	"testing"
	"time"
)

func addrs(n int, first byte) []netip.AddrPort {
	out := make([]netip.AddrPort, n)
	for i := range out {
		out[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, first, byte(i >> 8), byte(i)}), 6881)
	}
	return out
}

func TestAddrBookBoundAndFilter(t *testing.T) {
	b := newAddrBook()
	bad := netip.MustParseAddrPort("10.9.9.9:6881")
	n := b.learn(append(addrs(maxKnownPeers+500, 1), bad), "tracker", func(a netip.AddrPort) bool { return a != bad })
	if n != maxKnownPeers || len(b.known) != maxKnownPeers {
		t.Fatalf("learned %d, book holds %d; bound %d", n, len(b.known), maxKnownPeers)
	}
	if b.known[bad] != nil {
		t.Fatal("an address the filter refused was kept")
	}
	// IPv4-mapped IPv6 is the same peer as its IPv4 form.
	b = newAddrBook()
	b.learn([]netip.AddrPort{netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")}, "pex", func(netip.AddrPort) bool { return true })
	if b.known[netip.MustParseAddrPort("10.0.0.1:1")] == nil {
		t.Fatal("mapped address not unmapped")
	}
}

func TestAddrBookDialBackoff(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := newAddrBook()
	b.learn(addrs(3, 2), "tracker", func(netip.AddrPort) bool { return true })
	got := b.candidates(now, 2, func(*knownPeer) bool { return false })
	if len(got) != 2 || b.dialing() != 2 {
		t.Fatalf("candidates %v, dialing %d", got, b.dialing())
	}
	// A failed dial backs off 30 s, then doubles; our own busy queue is
	// no failure and retries within 5 s.
	b.dialFailed(got[0], false, now, 0)
	b.dialFailed(got[1], true, now, 2*time.Second)
	if k := b.known[got[0]]; k.failures != 1 || !k.nextDial.Equal(now.Add(30*time.Second)) {
		t.Fatalf("after a failure: %d failures, next dial %v", k.failures, k.nextDial.Sub(now))
	}
	if k := b.known[got[1]]; k.failures != 0 || !k.nextDial.Equal(now.Add(3*time.Second)) {
		t.Fatalf("after busy: %d failures, next dial %v", k.failures, k.nextDial.Sub(now))
	}
	if got := b.candidates(now.Add(10*time.Second), 5, func(*knownPeer) bool { return false }); len(got) != 2 {
		t.Fatalf("10 s later %d candidates, want the busy one and the third", len(got))
	}
	if d := redialBackoff(10); d != 15*time.Minute {
		t.Fatalf("backoff capped at %v", d)
	}
	// Connected and then gone: redialed after 30 s, failures forgiven.
	b.connected(got[0], true)
	if at, busy := b.nextDial(now.Add(time.Hour)); !busy || !at.Equal(now.Add(time.Hour)) {
		t.Fatal("a connection must keep the session ticking")
	}
	b.disconnected(got[0], now, &PeerSnapshot{Client: "x"})
	if k := b.known[got[0]]; k.connected || k.failures != 0 || k.lastPeer.Client != "x" {
		t.Fatalf("after disconnect: %+v", k)
	}
	// An address we dialed ourselves is kept even if nobody told us of it.
	other := netip.MustParseAddrPort("10.8.0.1:1")
	b.connected(other, true)
	if b.known[other] == nil || b.known[other].source != "dial" {
		t.Fatal("dialed address not remembered")
	}
	b.refused(other, now)
	if !b.known[other].nextDial.Equal(now.Add(redialBackoff(3))) {
		t.Fatal("a refused connection is redialed soon")
	}
}
