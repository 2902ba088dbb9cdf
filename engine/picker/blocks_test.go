package picker

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"
)

func TestTimeoutsFreeRequests(t *testing.T) {
	p := uniform(t, 4, 4*BlockSize, 6)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	old := p.Pick(1, nil, 3, t0)
	young := p.Pick(2, nil, 2, t0.Add(5*time.Second))
	got := p.Timeouts(t0.Add(10*time.Second), 8*time.Second)
	mustCheck(t, p)
	if len(got) != len(old) {
		t.Fatalf("timeouts %v, want peer 1's %v", got, old)
	}
	for k, c := range got {
		if c.Peer != 1 || c.Request != old[k] {
			t.Fatalf("timeout %d = %v, want peer 1 %v", k, c, old[k])
		}
	}
	if p.Outstanding(1) != 0 || p.Outstanding(2) != len(young) {
		t.Fatalf("outstanding %d/%d", p.Outstanding(1), p.Outstanding(2))
	}
	// The freed blocks are handed out again, first since they are partial.
	// Both started pieces have 3 free blocks; 6 picks must be exactly those.
	again := p.Pick(2, nil, 6, t0.Add(11*time.Second))
	for _, r := range old {
		if !slices.Contains(again, r) {
			t.Fatalf("freed block %v not re-picked: %v", r, again)
		}
	}
	if ps := pieces(again); len(ps) != 2 || !slices.Contains(ps, young[0].Piece) || !slices.Contains(ps, young[1].Piece) {
		t.Fatalf("re-pick %v strayed from the started pieces %v", again, young)
	}
	if len(p.Timeouts(t0.Add(11*time.Second), 8*time.Second)) != 0 {
		t.Fatal("a second call returned the same timeouts")
	}
	mustCheck(t, p)
}

func TestPieceFailedReturnsContributorsAndFreesBlocks(t *testing.T) {
	p := uniform(t, 3, 3*BlockSize, 7)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	a := p.Pick(1, nil, 2, t0)
	b := p.Pick(2, nil, 1, t0)
	if a[0].Piece != b[0].Piece {
		t.Fatalf("peer 2 did not continue the partial piece: %v %v", a, b)
	}
	piece := a[0].Piece
	complete := false
	for _, x := range []struct {
		peer PeerID
		r    Request
	}{{1, a[0]}, {2, b[0]}, {1, a[1]}} {
		var err error
		_, complete, _, err = p.BlockReceived(x.peer, x.r.Piece, x.r.Begin, x.r.Length)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !complete {
		t.Fatal("piece not complete after all blocks")
	}
	if got := p.Contributors(piece); !slices.Equal(got, []PeerID{1, 2}) {
		t.Fatalf("contributors %v", got)
	}
	who, err := p.PieceFailed(piece)
	if err != nil || !slices.Equal(who, []PeerID{1, 2}) {
		t.Fatalf("PieceFailed = %v, %v", who, err)
	}
	mustCheck(t, p)
	if p.Missing() != 3 || p.Contributors(piece) != nil {
		t.Fatalf("missing %d contributors %v", p.Missing(), p.Contributors(piece))
	}
	// All three blocks of the failed piece can be requested again.
	var again int
	for _, r := range p.Pick(2, nil, 9, t0) {
		if r.Piece == piece {
			again++
		}
	}
	if again != 3 {
		t.Fatalf("%d blocks of the failed piece re-picked, want 3", again)
	}
	// A piece delivered by one peer names only that peer.
	var sole int
	for _, r := range p.Pick(1, nil, 3, t0) {
		sole = r.Piece
		_, complete, _, _ = p.BlockReceived(1, r.Piece, r.Begin, r.Length)
	}
	if who, _ := p.PieceFailed(sole); !complete || !slices.Equal(who, []PeerID{1}) {
		t.Fatalf("sole contributor: complete=%v who=%v", complete, who)
	}
	mustCheck(t, p)
}

func TestBadInputsRejected(t *testing.T) {
	p := uniform(t, 2, 2*BlockSize, 9)
	for _, c := range []struct{ piece, begin, length int }{
		{-1, 0, BlockSize}, {2, 0, BlockSize}, {0, 1, BlockSize}, {0, 2 * BlockSize, BlockSize},
		{0, 0, BlockSize - 1}, {0, -BlockSize, BlockSize},
	} {
		if _, _, _, err := p.BlockReceived(1, c.piece, c.begin, c.length); err == nil {
			t.Fatalf("block %v accepted", c)
		}
	}
	if err := p.PeerHas(1, 2); !errors.Is(err, ErrBadPiece) {
		t.Fatalf("have 2: %v", err)
	}
	if err := p.RequestRejected(1, Request{0, 0, BlockSize}); !errors.Is(err, ErrNotRequested) {
		t.Fatalf("reject of unrequested block: %v", err)
	}
	if _, err := New(2, func(i int) int64 { return int64(i) }, nil, rand.New(rand.NewSource(1))); !errors.Is(err, ErrBadSize) {
		t.Fatalf("zero piece size accepted: %v", err)
	}
	mustCheck(t, p)
}

func TestRejectChokeAndAllowedFast(t *testing.T) {
	const n = 8
	p := uniform(t, n, 2*BlockSize, 10)
	p.PeerHaveAll(1)
	got := p.Pick(1, nil, 4, t0)
	if err := p.RequestRejected(1, got[0]); err != nil {
		t.Fatal(err)
	}
	if p.Outstanding(1) != 3 {
		t.Fatalf("outstanding after reject %d", p.Outstanding(1))
	}
	// Choke with fast extension: requests for allowed-fast piece 6 survive.
	fast := p.PickAllowedFast(1, nil, []int{6, -1, 99}, 5, t0)
	if len(fast) != 2 || pieces(fast)[0] != 6 {
		t.Fatalf("allowed-fast pick %v", fast)
	}
	p.PeerChoked(1, func(r Request) bool { return r.Piece == 6 })
	mustCheck(t, p)
	if p.Outstanding(1) != 2 {
		t.Fatalf("outstanding after choke %d, want the 2 allowed-fast", p.Outstanding(1))
	}
	p.PeerChoked(1, nil)
	if p.Outstanding(1) != 0 {
		t.Fatal("plain choke left requests")
	}
	// Everything is free again: one peer can take all 16 blocks.
	if all := p.Pick(1, nil, 100, t0); len(all) != 2*n {
		t.Fatalf("after choke picked %d blocks, want %d", len(all), 2*n)
	}
	mustCheck(t, p)
}

// A peer that keeps requesting and cancelling the same blocks while the
// clock stands still must not grow the timeout queue without bound.
func TestTimeoutQueueStaysBounded(t *testing.T) {
	p := uniform(t, 4, 16*BlockSize, 13)
	p.PeerHaveAll(1)
	for range 1000 {
		for _, r := range p.Pick(1, nil, 16, t0) {
			if err := p.RequestCancelled(1, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if q := len(p.peers[1].queue); q > 2*16+64+1 {
		t.Fatalf("timeout queue holds %d entries for 0 outstanding requests", q)
	}
	mustCheck(t, p)
	// Requests made at the same instant still time out exactly once.
	reqs := p.Pick(1, nil, 16, t0)
	if got := p.Timeouts(t0.Add(time.Minute), time.Second); len(got) != len(reqs) {
		t.Fatalf("%d timeouts for %d requests", len(got), len(reqs))
	}
	mustCheck(t, p)
}
