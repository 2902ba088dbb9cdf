package engine

import (
	"testing"
	"time"

	"gotorrentserver/engine/wire"
)

func TestBufPoolReusesWithinBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := newBufPool(3 << 20)
	a := p.get(1<<20, 1<<20, now)
	a[0] = 42
	p.put(a)
	b := p.get(1000, 1<<20, now) // a short last piece shares the class
	if len(b) != 1000 || cap(b) != 1<<20 || &b[:1][0] != &a[:1][0] {
		t.Fatalf("got len %d cap %d, not the buffer put back", len(b), cap(b))
	}
	if p.held.Load() != 0 {
		t.Fatalf("held %d after taking the only buffer", p.held.Load())
	}
	for range 5 {
		p.put(make([]byte, 1<<20))
	}
	if p.held.Load() != 3<<20 {
		t.Fatalf("held %d, want the 3 MiB budget", p.held.Load())
	}
	if c := p.get(16384, 16384, now); cap(c) != 16384 {
		t.Fatal("another piece length got a foreign buffer")
	}
	p.trim(now.Add(pieceBufIdle/2), pieceBufIdle)
	if p.held.Load() != 3<<20 {
		t.Fatal("trimmed while recently used")
	}
	p.trim(now.Add(pieceBufIdle), pieceBufIdle)
	if p.held.Load() != 0 {
		t.Fatalf("held %d after an idle trim", p.held.Load())
	}
}

// A session whose finished pieces pile up behind the disk stops asking for
// more, and asks again once they are written.
func TestVerifyBacklogHoldsRequests(t *testing.T) {
	f := newFixture(t, false)
	f.s.post(evFunc(func(s *Session) { s.dl.verifying = maxVerifyBacklog }))
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	if n := fc.sentTypes(t)[wire.Request]; n != 0 {
		t.Fatalf("%d requests sent with the verify backlog full", n)
	}
	f.s.post(evFunc(func(s *Session) { s.dl.verifying = 0 }))
	f.sync()
	if fc.sentTypes(t)[wire.Request] == 0 {
		t.Fatal("no requests once the backlog drained")
	}
}
