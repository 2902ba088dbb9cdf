package picker

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"
)

func TestEndgameDuplicatesAndCancels(t *testing.T) {
	p := uniform(t, 2, 2*BlockSize, 11)
	for id := range PeerID(5) {
		p.PeerHaveAll(id)
	}
	if p.InEndgame() {
		t.Fatal("endgame with every block free")
	}
	all := p.Pick(0, nil, 100, t0)
	if len(all) != 4 || !p.InEndgame() {
		t.Fatalf("peer 0 picked %v, endgame=%v", all, p.InEndgame())
	}
	dup := p.Pick(1, nil, 100, t0)
	if !sameSet(dup, all) {
		t.Fatalf("endgame duplicates %v, want every outstanding block %v", dup, all)
	}
	// Blocks with fewer requesters first: peer 2 asking for one block gets
	// a third source only because all blocks already have two.
	p.EndgameDup = 2
	if got := p.Pick(2, nil, 100, t0); len(got) != 0 {
		t.Fatalf("EndgameDup=2 but peer 2 got %v", got)
	}
	p.EndgameDup = 3
	third := p.Pick(2, nil, 1, t0)
	if len(third) != 1 {
		t.Fatalf("third source: %v", third)
	}
	p.Pick(3, nil, 100, t0)
	if got := p.Pick(4, nil, 100, t0); len(got) != 0 {
		t.Fatalf("a block got a fourth requester: %v", got)
	}
	mustCheck(t, p)

	r := third[0]
	cancels, complete, dup2, err := p.BlockReceived(1, r.Piece, r.Begin, r.Length)
	if err != nil || complete || dup2 {
		t.Fatalf("receive: complete=%v dup=%v err=%v", complete, dup2, err)
	}
	var cancelled []PeerID
	for _, c := range cancels {
		if c.Request != r {
			t.Fatalf("cancel for the wrong block: %v", c)
		}
		cancelled = append(cancelled, c.Peer)
	}
	slices.Sort(cancelled)
	if !slices.Equal(cancelled, []PeerID{0, 2}) {
		t.Fatalf("cancels went to %v, want the other requesters 0 and 2", cancelled)
	}
	if p.Outstanding(0) != 3 || p.Outstanding(2) != 0 {
		t.Fatalf("cancelled requests still outstanding: %d %d", p.Outstanding(0), p.Outstanding(2))
	}
	// The cancelled copy may still arrive: it was no longer asked for, so
	// it is refused with nothing changed (the session discards it against
	// the allowance the cancel gave the peer).
	if _, _, _, err := p.BlockReceived(0, r.Piece, r.Begin, r.Length); !errors.Is(err, ErrNotRequested) {
		t.Fatalf("cancelled copy: err %v, want ErrNotRequested", err)
	}
	if p.Outstanding(0) != 3 {
		t.Fatalf("refused copy changed peer 0's requests: %d outstanding", p.Outstanding(0))
	}
	// Completing the piece reports complete exactly once.
	for _, x := range all {
		if x.Piece != r.Piece || x == r {
			continue
		}
		_, complete, _, _ = p.BlockReceived(0, x.Piece, x.Begin, x.Length)
	}
	if !complete {
		t.Fatal("piece not complete")
	}
	mustCheck(t, p)
}

func TestNoEndgameWhileFreeBlocksRemain(t *testing.T) {
	p := uniform(t, 3, BlockSize, 12)
	_ = p.PeerBitfield(1, bits(3, 0))
	_ = p.PeerBitfield(2, bits(3, 0, 1))
	if got := p.Pick(1, nil, 5, t0); len(got) != 1 {
		t.Fatalf("peer 1 got %v", got)
	}
	// Piece 1 is still free (peer 2 can give it): no duplicate of piece 0 for peer 1.
	if got := p.Pick(1, nil, 5, t0); len(got) != 0 {
		t.Fatalf("duplicate handed out before endgame: %v", got)
	}
	p.Pick(2, nil, 5, t0)
	// Piece 2 is held by nobody: it must not hold endgame back.
	if !p.InEndgame() {
		t.Fatal("no endgame although every obtainable block is requested")
	}
	if got := p.Pick(1, nil, 5, t0); len(got) != 0 {
		t.Fatalf("peer 1 already requested its only piece, got %v", got)
	}
	if got := p.Pick(3, bits(3, 0, 1), 5, t0); len(got) != 2 {
		t.Fatalf("new peer in endgame got %v", got)
	}
	mustCheck(t, p)
}

// TestSwarmDownloadCompletes downloads a whole torrent from a random swarm
// with chokes, rejects, timeouts, departures and a corrupt peer, checking
// every internal invariant after each step.
func TestSwarmDownloadCompletes(t *testing.T) {
	failures, verified := 0, 0
	for seed := range int64(20) {
		rng := rand.New(rand.NewSource(seed))
		const n = 40
		size := func(i int) int64 {
			if i == n-1 {
				return 3*BlockSize + 100
			}
			return 5 * BlockSize
		}
		p, err := New(n, size, nil, rand.New(rand.NewSource(seed)))
		if err != nil {
			t.Fatal(err)
		}
		const peers = 6
		bad := PeerID(5) // sends garbage for piece 0..9
		for id := range PeerID(peers) {
			bf := bits(n)
			for i := range n {
				if rng.Intn(3) > 0 || id == 0 {
					bf.Set(uint(i))
				}
			}
			if err := p.PeerBitfield(id, bf); err != nil {
				t.Fatal(err)
			}
		}
		now := t0
		badPieces := map[int]bool{}
		for step := 0; p.Missing() > 0; step++ {
			if step > 20000 {
				t.Fatalf("seed %d: not done after %d steps, missing %d", seed, step, p.Missing())
			}
			now = now.Add(100 * time.Millisecond)
			id := PeerID(rng.Intn(peers))
			switch k := rng.Intn(20); {
			case k == 0:
				p.PeerChoked(id, nil)
			case k == 1:
				p.Timeouts(now, time.Second)
			case k == 2:
				// Disconnect and reconnect as a seed.
				p.PeerGone(id)
				p.PeerHaveAll(id)
			default:
				for _, r := range p.Pick(id, nil, 1+rng.Intn(8), now) {
					if rng.Intn(10) == 0 {
						if err := p.RequestRejected(id, r); err != nil {
							t.Fatal(err)
						}
						continue
					}
					_, complete, _, err := p.BlockReceived(id, r.Piece, r.Begin, r.Length)
					if err != nil {
						t.Fatal(err)
					}
					if id == bad && r.Piece < 10 {
						badPieces[r.Piece] = true
					}
					if complete {
						if badPieces[r.Piece] {
							who, _ := p.PieceFailed(r.Piece)
							if !slices.Contains(who, bad) {
								t.Fatalf("contributors %v miss the bad peer", who)
							}
							delete(badPieces, r.Piece)
							failures++
						} else if err := p.PieceVerified(r.Piece); err != nil {
							t.Fatal(err)
						} else {
							verified++
						}
					}
				}
			}
			if err := checkInvariants(p); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
		}
	}
	// Each piece is verified exactly once; the corrupt peer was caught.
	if verified != 20*40 || failures == 0 {
		t.Fatalf("verified %d pieces (want %d), %d failures", verified, 20*40, failures)
	}
}

func sameSet(a, b []Request) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}
