package picker

import (
	"slices"
	"testing"
)

// Pieces only in skipped files are never asked for, do not count as
// missing, and a peer holding only them is not interesting; once every
// wanted piece is verified the torrent is complete.
func TestPrioritySkippedNeverPicked(t *testing.T) {
	const n = 8
	for _, seq := range []bool{false, true} {
		p := uniform(t, n, BlockSize, 3)
		p.SetSequential(seq)
		for i := 2; i <= 5; i++ {
			if err := p.SetPiecePriority(i, PrioritySkip); err != nil {
				t.Fatal(err)
			}
		}
		mustCheck(t, p)
		if p.Missing() != 4 {
			t.Fatalf("missing %d, want 4", p.Missing())
		}
		if p.Interesting(bits(n, 2, 3, 4, 5)) {
			t.Fatal("a peer with only skipped pieces is interesting")
		}
		if !p.Interesting(bits(n, 5, 6)) {
			t.Fatal("a peer with a wanted piece is not interesting")
		}
		p.PeerHaveAll(1)
		reqs := p.Pick(1, nil, 100, t0)
		got := pieces(reqs)
		slices.Sort(got)
		if !slices.Equal(got, []int{0, 1, 6, 7}) {
			t.Fatalf("sequential=%v picked pieces %v, want 0 1 6 7", seq, got)
		}
		if fast := p.PickAllowedFast(2, bits(n, 3), []int{3}, 4, t0); len(fast) != 0 {
			t.Fatalf("allowed-fast picked a skipped piece: %v", fast)
		}
		for _, r := range reqs {
			if _, complete, _, err := p.BlockReceived(1, r.Piece, r.Begin, r.Length); err != nil || !complete {
				t.Fatalf("block %v: complete %v, %v", r, complete, err)
			}
			if err := p.PieceVerified(r.Piece); err != nil {
				t.Fatal(err)
			}
		}
		mustCheck(t, p)
		if p.Missing() != 0 || p.PeerInteresting(1) {
			t.Fatalf("missing %d after the wanted pieces, seed interesting %v", p.Missing(), p.PeerInteresting(1))
		}
		if more := p.Pick(1, nil, 100, t0); len(more) != 0 {
			t.Fatalf("picked %v with nothing wanted left", more)
		}
		// Wanted again: picked, and missing again.
		if err := p.SetPiecePriority(4, PriorityNormal); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, p)
		if p.Missing() != 1 || !p.PeerInteresting(1) {
			t.Fatalf("missing %d after wanting piece 4 again", p.Missing())
		}
		if got := pieces(p.Pick(1, nil, 100, t0)); !slices.Equal(got, []int{4}) {
			t.Fatalf("picked %v, want piece 4", got)
		}
	}
}

// Pieces of high priority are started before any normal one, rarest first
// among themselves, and in order in sequential mode.
func TestPriorityHighFirst(t *testing.T) {
	const n = 10
	for _, seq := range []bool{false, true} {
		p := uniform(t, n, BlockSize, 5)
		p.SetSequential(seq)
		p.PeerHaveAll(1)
		for _, i := range []int{7, 8} {
			if err := p.SetPiecePriority(i, PriorityHigh); err != nil {
				t.Fatal(err)
			}
		}
		mustCheck(t, p)
		first := pieces(p.Pick(1, nil, 2, t0))
		slices.Sort(first)
		if !slices.Equal(first, []int{7, 8}) {
			t.Fatalf("sequential=%v: first picks %v, want the high pieces 7 8", seq, first)
		}
		next := pieces(p.Pick(1, nil, 1, t0))
		if seq && !slices.Equal(next, []int{0}) {
			t.Fatalf("sequential: after the high pieces picked %v, want 0", next)
		}
		// Back to normal: it rejoins the ordinary buckets.
		if err := p.SetPiecePriority(9, PriorityHigh); err != nil {
			t.Fatal(err)
		}
		if err := p.SetPiecePriority(9, PriorityNormal); err != nil {
			t.Fatal(err)
		}
		mustCheck(t, p)
	}
}

// A started piece that becomes unwanted is dropped by PieceFailed and not
// picked again; a verified one stays verified.
func TestPrioritySkipStartedPiece(t *testing.T) {
	p := uniform(t, 4, 2*BlockSize, 7)
	p.PeerHaveAll(1)
	reqs := p.Pick(1, nil, 1, t0)
	piece := reqs[0].Piece
	if err := p.SetPiecePriority(piece, PrioritySkip); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, p)
	if cs := p.PieceRequests(piece); len(cs) != 1 {
		t.Fatalf("requests of the started piece: %v", cs)
	}
	if _, err := p.PieceFailed(piece); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, p)
	for _, r := range p.Pick(1, nil, 100, t0) {
		if r.Piece == piece {
			t.Fatalf("picked skipped piece %d again", piece)
		}
	}
	if p.Missing() != 3 {
		t.Fatalf("missing %d, want 3", p.Missing())
	}
}
