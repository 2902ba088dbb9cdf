package engine

import (
	"testing"
	"time"

	"gotorrentserver/engine/wire"
)

// unchokedPeers counts the peers the session uploads to.
func (f *fixture) unchokedPeers() int {
	var n int
	f.s.post(evFunc(func(s *Session) { n = s.swarm.unchoked() }))
	f.sync()
	return n
}

// With automatic slots (the default) a seed with many interested peers
// that take little opens slots round by round until all are served, and
// each of them is told so.
func TestAutoSlotsServeEveryInterestedPeer(t *testing.T) {
	f := newFixture(t, true)
	var conns []*fakeConn
	for i := range 40 {
		fc, h := f.attach(byte(i + 1))
		f.deliver(h, wire.Message{Type: wire.Interested})
		conns = append(conns, fc)
	}
	if n := f.unchokedPeers(); n != 4 {
		t.Fatalf("%d peers unchoked before any round, want the default 4", n)
	}
	rounds := 0
	for ; rounds < 6 && f.unchokedPeers() < 40; rounds++ {
		f.tick(time.Second) // report
		f.c.slotsRound([]*Session{f.s})
		f.tick(time.Second) // use the budget
	}
	if n := f.unchokedPeers(); n != 40 {
		t.Fatalf("after %d rounds %d of 40 interested peers unchoked", rounds, n)
	}
	for i, fc := range conns {
		if fc.sentTypes(t)[wire.Unchoke] == 0 {
			t.Fatalf("peer %d was never sent an unchoke", i)
		}
	}
	// A rechoke round keeps them all: the budget covers every one.
	f.tick(autoRechokeEvery)
	if n := f.unchokedPeers(); n != 40 {
		t.Fatalf("a rechoke left %d of 40 unchoked", n)
	}
}

// A fixed slot count (-unchoke-slots N) is not grown.
func TestFixedSlotsStayFixed(t *testing.T) {
	f := newFixture(t, true)
	f.c.cfg.UnchokeSlots = 4
	f.s.post(evFunc(func(s *Session) { s.upload.choker.Slots = 4 }))
	for i := range 12 {
		_, h := f.attach(byte(i + 1))
		f.deliver(h, wire.Message{Type: wire.Interested})
	}
	for range 4 {
		f.tick(time.Second)
	}
	f.tick(15 * time.Second)
	if n := f.unchokedPeers(); n != 4 {
		t.Fatalf("%d peers unchoked with 4 fixed slots", n)
	}
}
