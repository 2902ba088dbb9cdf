package engine

import (
	"testing"

	"gotorrentserver/engine/wire"
)

// A peer whose send buffer is full counts as waiting on us when its bytes
// sit in front of our event loop, and as limited by its own link when the
// socket would not take them: only the first says more slots would not
// help, which is what kept fast loopback leechers from all being
// unchoked at a third less throughput.
func TestReportSlotsTellsOwnBacklogFromPeerLink(t *testing.T) {
	f := newFixture(t, true)
	link, hl := f.attach(1)
	loop, hp := f.attach(2)
	_, hi := f.attach(3) // interested, nothing asked
	for _, c := range []*fakeConn{link, loop} {
		c.buffered.Store(1 << 20)
	}
	link.unsent.Store(900 << 10) // the peer's link is full
	loop.unsent.Store(0)         // all of it waits for the loop
	for _, h := range []*Peer{hl, hp, hi} {
		f.deliver(h, wire.Message{Type: wire.Interested})
	}
	for _, h := range []*Peer{hl, hp} {
		f.deliver(h, wire.Message{Type: wire.Request, Index: 1, Begin: 0, Length: 16384})
	}
	var interested, unchoked, starved int32
	f.s.post(evFunc(func(s *Session) {
		s.reportSlots()
		interested, unchoked, starved = s.slots.interested.Load(), s.slots.unchoked.Load(), s.slots.starved.Load()
	}))
	f.sync()
	if interested != 3 || unchoked != 3 {
		t.Fatalf("interested %d unchoked %d, want 3 and 3", interested, unchoked)
	}
	if starved != 1 {
		t.Fatalf("starved %d, want 1: only the peer whose bytes wait for our loop", starved)
	}
	if sent := loop.sentTypes(t)[wire.Piece] + link.sentTypes(t)[wire.Piece]; sent != 0 {
		t.Fatalf("%d blocks sent to peers over their send bound", sent)
	}
}
