package picker

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/metainfo"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func pieces(reqs []Request) []int {
	var out []int
	for _, r := range reqs {
		if !slices.Contains(out, r.Piece) {
			out = append(out, r.Piece)
		}
	}
	return out
}

func TestRarestFirstPicksRarest(t *testing.T) {
	const n = 6
	p := uniform(t, n, BlockSize, 1)
	// Availability: piece i is held by 5-i peers, except piece 3, held by one.
	want := []int{5, 4, 3, 1, 1, 0}
	for i, c := range want {
		for k := range c {
			if err := p.PeerHas(PeerID(10+k), i); err != nil {
				t.Fatal(err)
			}
		}
	}
	p.PeerHaveAll(99)
	for i, c := range want {
		if got := p.Availability(i); got != c+1 {
			t.Fatalf("availability of %d = %d, want %d", i, got, c+1)
		}
	}
	// One block per piece: successive picks must come out in rarity order.
	var order []int
	for range n {
		reqs := p.Pick(99, nil, 1, t0)
		if len(reqs) != 1 {
			t.Fatalf("picked %v", reqs)
		}
		order = append(order, reqs[0].Piece)
	}
	mustCheck(t, p)
	if order[0] != 5 {
		t.Fatalf("first pick %d, want the piece only the seed has (5); order %v", order[0], order)
	}
	for k := 1; k < n; k++ {
		if want[order[k]] < want[order[k-1]] {
			t.Fatalf("order %v is not rarest first", order)
		}
	}
	// A peer that lacks the rare pieces gets the rarest of what it has.
	q := uniform(t, n, BlockSize, 1)
	for i, c := range want {
		for k := range c {
			_ = q.PeerHas(PeerID(10+k), i)
		}
	}
	if got := q.Pick(10, nil, 1, t0); len(got) != 1 || want[got[0].Piece] != 1 {
		t.Fatalf("peer 10 picked %v, want piece 3 or 4", got)
	}
}

func TestRarestTieBreakIsUniform(t *testing.T) {
	const n, seeds = 8, 4000
	counts := make([]int, n)
	for seed := range int64(seeds) {
		p := uniform(t, n, BlockSize, seed)
		_ = p.PeerBitfield(1, bits(n, 0, 1, 2, 3, 4, 5, 6, 7))
		// Pieces 4..7 are also held by peer 2: pieces 0..3 are the rarest.
		_ = p.PeerBitfield(2, bits(n, 4, 5, 6, 7))
		got := p.Pick(1, nil, 1, t0)
		if len(got) != 1 || got[0].Piece > 3 {
			t.Fatalf("seed %d picked %v, want one of the rarest 0..3", seed, got)
		}
		counts[got[0].Piece]++
	}
	// 1000 expected each; a fair draw stays within ±15% with overwhelming
	// probability (sd ~27), a biased one does not.
	for i := range 4 {
		if counts[i] < 850 || counts[i] > 1150 {
			t.Fatalf("tie-break not uniform: %v", counts[:4])
		}
	}
}

func TestPartialPiecesFirst(t *testing.T) {
	const n = 10
	p := uniform(t, n, 4*BlockSize, 2)
	all := bits(n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	_ = p.PeerBitfield(1, all)
	_ = p.PeerBitfield(2, all)
	first := p.Pick(1, nil, 1, t0)
	started := first[0].Piece
	// Make the started piece the most common one, so rarest-first alone
	// would never choose it next.
	for k := 3; k < 8; k++ {
		_ = p.PeerHas(PeerID(k), started)
	}
	got := p.Pick(2, nil, 3, t0)
	mustCheck(t, p)
	if len(got) != 3 {
		t.Fatalf("picked %v", got)
	}
	for k, r := range got {
		if r.Piece != started || r.Begin != (k+1)*BlockSize {
			t.Fatalf("peer 2 picked %v, want the remaining blocks of started piece %d", got, started)
		}
	}
	// With the started piece fully requested, the next pick starts another.
	if next := p.Pick(2, nil, 1, t0); len(next) != 1 || next[0].Piece == started {
		t.Fatalf("next pick %v", next)
	}
}

func TestSequentialMode(t *testing.T) {
	const n = 20
	p := uniform(t, n, 2*BlockSize, 3)
	p.SetSequential(true)
	p.PeerHaveAll(1)
	_ = p.PeerBitfield(2, bits(n, 5, 7, 9))
	got := p.Pick(1, nil, 6, t0)
	if !slices.Equal(pieces(got), []int{0, 1, 2}) {
		t.Fatalf("sequential pick %v", got)
	}
	if got := p.Pick(2, nil, 3, t0); !slices.Equal(pieces(got), []int{5, 7}) {
		t.Fatalf("peer lacking low pieces picked %v, want its lowest: 5 then 7", got)
	}
	p.SetSequential(false)
	mustCheck(t, p)
}

func TestLastPieceAndBlockLengths(t *testing.T) {
	const total, plen = 1_000_000, 262144
	m := &metainfo.MetaInfo{PieceLength: plen, TotalLength: total, Pieces: make([]metainfo.Hash, (total+plen-1)/plen)}
	p, err := FromMeta(m, nil, rand.New(rand.NewSource(4)))
	if err != nil {
		t.Fatal(err)
	}
	p.PeerHaveAll(1)
	reqs := p.Pick(1, nil, 1000, t0)
	sum := 0
	perPiece := map[int]int{}
	for _, r := range reqs {
		sum += r.Length
		perPiece[r.Piece] += r.Length
		if r.Begin%BlockSize != 0 || r.Length <= 0 || r.Length > BlockSize {
			t.Fatalf("bad request %v", r)
		}
	}
	if sum != total {
		t.Fatalf("requests cover %d bytes, want %d", sum, total)
	}
	last := len(m.Pieces) - 1
	if perPiece[last] != total-last*plen {
		t.Fatalf("last piece covered %d bytes, want %d", perPiece[last], total-last*plen)
	}
	var tail Request
	for _, r := range reqs {
		if r.Piece == last && r.Begin > tail.Begin {
			tail = r
		}
	}
	wantTail := total - last*plen - (total-last*plen)/BlockSize*BlockSize
	if tail.Length != wantTail || tail.Begin+tail.Length != total-last*plen {
		t.Fatalf("last block %v, want length %d ending the piece", tail, wantTail)
	}
	// The short last block is accepted only with its exact length.
	if _, _, _, err := p.BlockReceived(1, last, tail.Begin, BlockSize); !errors.Is(err, ErrBadBlock) {
		t.Fatalf("full-size last block accepted: %v", err)
	}
	_, complete, dup, err := p.BlockReceived(1, last, tail.Begin, tail.Length)
	if err != nil || complete || dup {
		t.Fatalf("exact last block: complete=%v dup=%v err=%v", complete, dup, err)
	}
	mustCheck(t, p)
}

func TestAvailabilityAfterPeerGone(t *testing.T) {
	const n = 70 // crosses a 64-bit word
	p := uniform(t, n, BlockSize, 5)
	_ = p.PeerBitfield(1, bits(n, 0, 1, 65))
	_ = p.PeerBitfield(2, bits(n, 1, 65, 69))
	p.PeerHaveAll(3)
	_ = p.PeerHas(4, 65)
	check := func(piece, want int) {
		t.Helper()
		if got := p.Availability(piece); got != want {
			t.Fatalf("availability(%d) = %d, want %d", piece, got, want)
		}
	}
	check(0, 2)
	check(1, 3)
	check(65, 4)
	check(69, 2)
	check(30, 1)
	p.PeerGone(2)
	check(1, 2)
	check(65, 3)
	check(69, 1)
	p.PeerGone(3)
	check(0, 1)
	check(30, 0)
	p.PeerHaveNone(1)
	check(0, 0)
	check(65, 1)
	mustCheck(t, p)
	// With peer 1 re-announcing piece 65 and 0, piece 0 is the rarest.
	_ = p.PeerBitfield(1, bits(n, 0, 65))
	if got := p.Pick(1, nil, 1, t0); len(got) != 1 || got[0].Piece != 0 {
		t.Fatalf("picked %v, want piece 0", got)
	}
	mustCheck(t, p)
}

func TestVerifyAndInteresting(t *testing.T) {
	const n = 66
	p := uniform(t, n, BlockSize, 8)
	theirs := bits(n, 65)
	if !p.Interesting(theirs) {
		t.Fatal("peer with piece 65 not interesting")
	}
	// Bits past the last piece must not make a peer interesting.
	beyond := bitset.New(128).Set(100)
	if p.Interesting(beyond) {
		t.Fatal("bit past the end counted")
	}
	if err := p.PeerBitfield(1, beyond); !errors.Is(err, ErrBadBitfield) {
		t.Fatalf("bitfield with spare bits: %v", err)
	}
	_ = p.PeerBitfield(1, theirs)
	r := p.Pick(1, nil, 1, t0)
	if _, complete, _, _ := p.BlockReceived(1, r[0].Piece, r[0].Begin, r[0].Length); !complete {
		t.Fatal("single-block piece not complete")
	}
	if err := p.PieceVerified(65); err != nil {
		t.Fatal(err)
	}
	if p.Interesting(theirs) || p.PeerInteresting(1) || !p.HasPiece(65) || p.Missing() != n-1 {
		t.Fatal("verified piece still wanted")
	}
	if snap := p.Have(); !snap.Test(65) || snap.Count() != 1 {
		t.Fatalf("have snapshot %v", snap)
	}
	if _, _, _, err := p.BlockReceived(1, 65, 0, BlockSize); !errors.Is(err, ErrNotRequested) {
		t.Fatalf("unasked block of a verified piece: err %v, want ErrNotRequested", err)
	}
	mustCheck(t, p)
}

// With a bound on started pieces, peers share the started ones and a new
// piece starts only once one is verified.
func TestMaxActiveBoundsStartedPieces(t *testing.T) {
	p := uniform(t, 10, 4*BlockSize, 1)
	p.SetMaxActive(2)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	if !p.CanStart() {
		t.Fatal("CanStart false with nothing started")
	}
	first := p.Pick(1, nil, 100, t0)
	if got := pieces(first); len(got) != 2 || len(first) != 8 {
		t.Fatalf("first pick %v: want every block of 2 pieces", first)
	}
	if more := p.Pick(2, nil, 100, t0); len(more) != 0 || p.CanStart() {
		t.Fatalf("started a third piece at the bound (%v), or CanStart says it may", more)
	}
	piece := first[0].Piece
	for _, r := range first {
		if r.Piece != piece {
			continue
		}
		if _, _, _, err := p.BlockReceived(1, r.Piece, r.Begin, r.Length); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PieceVerified(piece); err != nil {
		t.Fatal(err)
	}
	next := p.Pick(2, nil, 100, t0)
	if got := pieces(next); len(got) != 1 || got[0] == piece {
		t.Fatalf("after one verified, picked %v: want one new piece", got)
	}
	mustCheck(t, p)
}

// A block the peer was never asked for is refused with nothing changed, even
// one we still need: otherwise any peer could push data into any piece.
func TestUnrequestedBlockRefused(t *testing.T) {
	p := uniform(t, 8, 4*BlockSize, 1)
	p.PeerHaveAll(1)
	p.PeerHaveAll(2)
	r := p.Pick(1, nil, 1, t0)[0]
	if _, _, _, err := p.BlockReceived(2, r.Piece, r.Begin, r.Length); !errors.Is(err, ErrNotRequested) {
		t.Fatalf("block requested from another peer: err %v, want ErrNotRequested", err)
	}
	if _, _, _, err := p.BlockReceived(2, 7, 0, BlockSize); !errors.Is(err, ErrNotRequested) {
		t.Fatalf("block nobody requested: err %v, want ErrNotRequested", err)
	}
	if p.Contributors(7) != nil || p.Outstanding(1) != 1 {
		t.Fatalf("refused blocks changed state: contributors %v, outstanding %d", p.Contributors(7), p.Outstanding(1))
	}
	if _, _, dup, err := p.BlockReceived(1, r.Piece, r.Begin, r.Length); err != nil || dup {
		t.Fatalf("requested block: dup %v err %v", dup, err)
	}
	mustCheck(t, p)
}
