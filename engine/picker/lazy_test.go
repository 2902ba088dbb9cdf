package picker

import (
	"math/rand"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"
)

// TestCompletePickerGrowsWhenAPieceIsLost: a complete picker keeps no
// per-piece state, yet counts availability correctly once a verified piece
// is lost and must be fetched again.
func TestCompletePickerGrowsWhenAPieceIsLost(t *testing.T) {
	const n = 100
	all := bitset.New(n)
	all.SetAll()
	p, err := New(n, func(int) int64 { return 32768 }, all, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	if p.avail != nil || p.parts != nil {
		t.Fatal("a complete picker allocated per-piece state")
	}
	p.PeerHaveAll(1)
	p.PeerBitfield(2, bits(n, 5, 7))
	p.PeerHas(3, 7)
	if got := p.Pick(1, nil, 10, time.Unix(0, 0)); got != nil {
		t.Fatalf("complete picker picked %v", got)
	}
	if _, err := p.PieceFailed(7); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, p)
	if a := p.Availability(7); a != 3 {
		t.Fatalf("availability of piece 7 is %d, want 3 (a seed and two peers)", a)
	}
	reqs := p.Pick(2, nil, 10, time.Unix(0, 0))
	if len(reqs) != 2 || reqs[0].Piece != 7 {
		t.Fatalf("picked %v, want the two blocks of piece 7", reqs)
	}
}
