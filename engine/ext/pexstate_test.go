package ext

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func peersN(from, to int, flags byte) []PexPeer {
	var out []PexPeer
	for i := from; i < to; i++ {
		out = append(out, PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 6881), Flags: flags})
	}
	return out
}

func addrsOf(ps []PexPeer) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range ps {
		out = append(out, p.Addr)
	}
	return out
}

func TestPexStateDiffsAndRateLimit(t *testing.T) {
	remote := ap("10.9.9.9:7000")
	s := NewPexState(remote)
	t0 := time.Unix(1e9, 0)
	conn := append(peersN(0, 5, PexReachable), PexPeer{Addr: remote}, PexPeer{Addr: ap("10.8.8.8:0")})

	msg, ok := s.Update(t0, conn, false)
	if !ok || !slices.Equal(msg.Added, peersN(0, 5, PexReachable)) || len(msg.Dropped) != 0 {
		t.Fatalf("first message %+v, %v: want the 5 peers, not the remote nor port 0", msg, ok)
	}
	// Changes within a minute wait.
	conn2 := append(peersN(2, 5, PexReachable), peersN(5, 7, PexSeed)...)
	if _, ok := s.Update(t0.Add(59*time.Second), conn2, false); ok {
		t.Fatal("second message within a minute")
	}
	msg, ok = s.Update(t0.Add(time.Minute), conn2, false)
	if !ok || !slices.Equal(msg.Added, peersN(5, 7, PexSeed)) || !slices.Equal(msg.Dropped, addrsOf(peersN(0, 2, 0))) {
		t.Fatalf("diff %+v, %v", msg, ok)
	}
	// Nothing changed: no message, and the clock is not reset.
	if _, ok := s.Update(t0.Add(3*time.Minute), conn2, false); ok {
		t.Fatal("empty diff sent")
	}
	msg, ok = s.Update(t0.Add(3*time.Minute+time.Second), conn2[1:], false)
	if !ok || len(msg.Added) != 0 || !slices.Equal(msg.Dropped, []netip.AddrPort{conn2[0].Addr}) {
		t.Fatalf("drop after quiet period %+v, %v", msg, ok)
	}
}

func TestPexStatePrivateNeverSends(t *testing.T) {
	s := NewPexState(ap("10.9.9.9:7000"))
	for i := 0; i < 5; i++ {
		if msg, ok := s.Update(time.Unix(1e9, 0).Add(time.Duration(i)*time.Hour), peersN(0, 10, 0), true); ok {
			t.Fatalf("PEX for a private torrent: %+v", msg)
		}
	}
}

func TestPexStateBoundsSpillOver(t *testing.T) {
	s := NewPexState(ap("10.9.9.9:7000"))
	t0 := time.Unix(1e9, 0)
	all := peersN(0, 120, 0)
	var told []netip.AddrPort
	for i := 0; i < 3; i++ {
		msg, ok := s.Update(t0.Add(time.Duration(i)*PexInterval), all, false)
		if !ok || len(msg.Added) > MaxPexSend {
			t.Fatalf("round %d: %d added, %v", i, len(msg.Added), ok)
		}
		told = append(told, addrsOf(msg.Added)...)
	}
	if !slices.Equal(told, addrsOf(all)) {
		t.Fatalf("spill-over told %d of %d peers, or in the wrong order", len(told), len(all))
	}
	msg, ok := s.Update(t0.Add(3*PexInterval), nil, false)
	if !ok || len(msg.Dropped) != MaxPexSend || len(msg.Added) != 0 {
		t.Fatalf("drop all: %d dropped, %v", len(msg.Dropped), ok)
	}
	// Encoded, a full message stays far below the wire's extended-message bound.
	if n := len(AppendPex(nil, msg)); n > 4096 {
		t.Fatalf("message of %d bytes", n)
	}
}

func TestPexStateTrackedBound(t *testing.T) {
	s := NewPexState(ap("10.9.9.9:7000"))
	t0 := time.Unix(1e9, 0)
	all := peersN(0, 2*MaxPexTracked, 0)
	total := 0
	for i := 0; i < 2*MaxPexTracked/MaxPexSend; i++ {
		msg, _ := s.Update(t0.Add(time.Duration(i)*PexInterval), all, false)
		total += len(msg.Added)
	}
	if total != MaxPexTracked || len(s.told) != MaxPexTracked {
		t.Fatalf("told %d peers, tracking %d; bound %d", total, len(s.told), MaxPexTracked)
	}
}

func TestPexStateReceivedRate(t *testing.T) {
	s := NewPexState(ap("10.9.9.9:7000"))
	t0 := time.Unix(1e9, 0)
	if !s.Received(t0) || s.Received(t0.Add(10*time.Second)) || !s.Received(t0.Add(PexInterval)) {
		t.Fatal("receive rate limit wrong")
	}
}
