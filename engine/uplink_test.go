package engine

import (
	"math/rand"
	"testing"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
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

// Fifty seeders' pipelines together want more blocks than the pieces in
// progress may hold: each gets the same fraction of its depth, so all of
// them stay busy instead of the first few taking every piece.
func TestPipelinesScaleToActivePieces(t *testing.T) {
	const pieceLen = 1 << 20
	mi := &metainfo.MetaInfo{PieceLength: pieceLen, TotalLength: 1024 * pieceLen}
	pick, err := picker.New(1024, func(int) int64 { return pieceLen }, bitset.New(1024), rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{mi: mi, swarm: newSwarm(), dl: newTransfer()}
	s.dl.pick = pick
	var peers []*peer
	for i := range 50 {
		p := &peer{pipe: picker.NewPipeline(), amInterested: true}
		for range 100 + 5*i { // slow start: one more per block
			p.pipe.BlockReceived()
		}
		s.swarm.add(p)
		peers = append(peers, p)
	}
	s.scaleDepths()
	budget := maxActivePieces(pieceLen) * pieceLen / blockSize
	asked := 0
	for _, p := range peers {
		asked += p.pipe.Depth()
	}
	total := 0
	for _, p := range peers {
		d := s.dl.depth(p)
		total += d
		if want := p.pipe.Depth() * budget / asked; d < want-1 || d > want+1 {
			t.Fatalf("depth %d of pipeline %d, want about %d", d, p.pipe.Depth(), want)
		}
	}
	if total > budget {
		t.Fatalf("pipelines ask for %d blocks, the pieces in progress hold %d", total, budget)
	}
	// Few peers: no scaling.
	s2 := &Session{mi: mi, swarm: newSwarm(), dl: newTransfer()}
	s2.dl.pick = pick
	s2.swarm.add(peers[0])
	s2.scaleDepths()
	if d := s2.dl.depth(peers[0]); d != peers[0].pipe.Depth() {
		t.Fatalf("one peer: depth %d, its pipeline %d", d, peers[0].pipe.Depth())
	}
}

// Under a limit that lets one read through per turn, every waiting peer
// gets its turn in rotation; map order gave one of five peers half of
// all turns.
func TestUploadOrderRotatesUnderALimit(t *testing.T) {
	u := newUploadQueue()
	for i := range 5 {
		p := &peer{id: picker.PeerID(i)}
		u.waiting[p.id] = p
	}
	turns := map[picker.PeerID]int{}
	for range 1000 {
		p := u.order(true)[0] // the limit lets one read through
		u.served++
		p.servedAt = u.served
		turns[p.id]++
	}
	for id, n := range turns {
		if n != 200 {
			t.Fatalf("peer %d served %d of 1000 turns, want 200 each (%v)", id, n, turns)
		}
	}
}
