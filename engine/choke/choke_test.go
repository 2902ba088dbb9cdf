package choke

import (
	"math/rand"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// session plays the caller: it keeps UnchokedAt the way PeerInfo documents.
type session struct {
	c       *Choker
	peers   []PeerInfo
	unchoke map[PeerID]bool
}

func newSession(seed int64, n int) *session {
	s := &session{c: New(rand.New(rand.NewSource(seed))), unchoke: map[PeerID]bool{}}
	for i := range n {
		s.peers = append(s.peers, PeerInfo{ID: PeerID(i), Interested: true, ConnectedAt: t0.Add(-time.Hour)})
	}
	return s
}

func (s *session) round(now time.Time, seeding bool) (map[PeerID]bool, PeerID) {
	u, opt := s.c.Rechoke(now, s.peers, seeding)
	for i := range s.peers {
		p := &s.peers[i]
		if u[p.ID] && !s.unchoke[p.ID] {
			p.UnchokedAt = now
		}
	}
	s.unchoke = u
	return u, opt
}

func TestLeechUnchokesBestDownloaders(t *testing.T) {
	s := newSession(1, 10)
	for i := range s.peers {
		s.peers[i].DownRate = int64(1000 * i) // peer 9 fastest
	}
	s.peers[9].Snubbed = true     // fastest but snubbed: no regular slot
	s.peers[8].Interested = false // fast but not interested: choked
	u, opt := s.round(t0, false)
	if len(u) != 4 || opt == NoPeer || !u[opt] {
		t.Fatalf("unchoked %v optimistic %d", u, opt)
	}
	for _, id := range []PeerID{7, 6, 5} {
		if !u[id] {
			t.Fatalf("best downloader %d choked: %v", id, u)
		}
	}
	if u[8] {
		t.Fatal("uninterested peer unchoked")
	}
	if opt == 7 || opt == 6 || opt == 5 || opt == 8 {
		t.Fatalf("optimistic %d is not an otherwise choked interested peer", opt)
	}
	// Rates change: tit-for-tat follows at the next round.
	s.peers[1].DownRate = 1e9
	u, _ = s.round(t0.Add(10*time.Second), false)
	if !u[1] || !u[7] || !u[6] {
		t.Fatalf("after rate change %v", u)
	}
}

func TestSeedRoundRobinGivesEveryoneATurn(t *testing.T) {
	for seed := range int64(20) {
		const n = 10
		s := newSession(seed, n)
		for i := range s.peers {
			s.peers[i].UpRate = int64(1000 * (i + 1)) // fast ones would hog a pure fastest-upload seed
		}
		rounds := map[PeerID]int{}
		// 4 unchoked at a time, turns of 3 rounds: ceil(10/4) turns = 9
		// rounds, plus slack because the optimistic slot's turns are not
		// aligned with the regular ones.
		now := t0
		for range 12 {
			u, _ := s.round(now, true)
			if len(u) != s.c.Slots {
				t.Fatalf("seed %d: %d unchoked, want %d", seed, len(u), s.c.Slots)
			}
			for id := range u {
				rounds[id]++
			}
			now = now.Add(s.c.RechokeEvery)
		}
		if len(rounds) != n {
			t.Fatalf("seed %d: only %d of %d peers unchoked in 12 rounds: %v", seed, len(rounds), n, rounds)
		}
		// Nobody, however fast, is unchoked for more than two turns while
		// others wait.
		for id, k := range rounds {
			if k > 6 {
				t.Fatalf("seed %d: peer %d unchoked %d of 12 rounds: %v", seed, id, k, rounds)
			}
		}
	}
}

func TestSeedKeepsFastestWhenOverbooked(t *testing.T) {
	s := newSession(2, 5)
	s.c.Slots = 3 // 2 regular
	now := t0
	// Three peers in their turn, one must go: the slowest uploader.
	for i, rate := range []int64{500, 900, 100} {
		s.peers[i].UpRate = rate
		s.peers[i].UnchokedAt = now.Add(-5 * time.Second)
	}
	s.c.unchoked = map[PeerID]bool{0: true, 1: true, 2: true}
	u, opt := s.c.Rechoke(now, s.peers, true)
	if !u[0] || !u[1] || opt == 0 || opt == 1 {
		t.Fatalf("unchoked %v optimistic %d, want fastest 0 and 1 regular", u, opt)
	}
}

func TestOptimisticRotatesEvery30s(t *testing.T) {
	s := newSession(3, 8)
	s.c.Slots = 2 // 1 regular + optimistic
	s.peers[0].DownRate = 1e6
	_, first := s.round(t0, false)
	for _, dt := range []time.Duration{10, 20, 29} {
		if _, o := s.round(t0.Add(dt*time.Second), false); o != first {
			t.Fatalf("optimistic changed from %d to %d after %ds", first, o, dt)
		}
	}
	prev := first
	for k := 1; k <= 5; k++ {
		_, o := s.round(t0.Add(time.Duration(30*k)*time.Second), false)
		if o == prev || o == NoPeer || o == 0 {
			t.Fatalf("rotation %d: optimistic %d after %d", k, o, prev)
		}
		prev = o
	}
	// Losing interest ends the optimistic unchoke at once.
	now := t0.Add(155 * time.Second)
	for i := range s.peers {
		if s.peers[i].ID == prev {
			s.peers[i].Interested = false
		}
	}
	if _, o := s.round(now, false); o == prev || o == NoPeer {
		t.Fatalf("uninterested optimistic %d kept (%d)", prev, o)
	}
}

func TestOptimisticFavoursNewPeers(t *testing.T) {
	const trials = 4000
	newWins := 0
	for seed := range int64(trials) {
		c := New(rand.New(rand.NewSource(seed)))
		c.Slots = 1 // only the optimistic slot
		peers := []PeerInfo{
			{ID: 1, Interested: true, ConnectedAt: t0.Add(-10 * time.Minute)},
			{ID: 2, Interested: true, ConnectedAt: t0.Add(-20 * time.Second)},
		}
		if _, o := c.Rechoke(t0, peers, false); o == 2 {
			newWins++
		}
	}
	// Weight 3:1 -> 75% (sd ~0.7%).
	if frac := float64(newWins) / trials; frac < 0.71 || frac > 0.79 {
		t.Fatalf("new peer chosen %.3f of the time, want about 0.75", frac)
	}
}

func TestSlotsRespected(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, slots := range []int{1, 2, 4, 7} {
		for trial := range 50 {
			c := New(rand.New(rand.NewSource(int64(trial))))
			c.Slots = slots
			var peers []PeerInfo
			interested := 0
			for i := range rng.Intn(12) {
				p := PeerInfo{ID: PeerID(i), Interested: rng.Intn(3) > 0, DownRate: rng.Int63n(1000),
					UpRate: rng.Int63n(1000), ConnectedAt: t0.Add(-time.Duration(rng.Intn(120)) * time.Second)}
				if p.Interested {
					interested++
				}
				peers = append(peers, p)
			}
			for _, seeding := range []bool{false, true} {
				u, opt := c.Rechoke(t0, peers, seeding)
				if len(u) != min(slots, interested) {
					t.Fatalf("slots %d, %d interested: unchoked %d", slots, interested, len(u))
				}
				for _, p := range peers {
					if u[p.ID] && !p.Interested {
						t.Fatalf("uninterested peer %d unchoked", p.ID)
					}
				}
				// Only when regular slots cannot take everyone is there an
				// optimistic unchoke.
				if (interested >= slots) != (opt != NoPeer) || (opt != NoPeer && !u[opt]) {
					t.Fatalf("slots %d, %d interested: optimistic %d", slots, interested, opt)
				}
			}
		}
	}
}

func TestUnlimitedAndDue(t *testing.T) {
	s := newSession(5, 6)
	s.peers[2].Interested = false
	s.peers[3].Snubbed = true
	s.c.Slots = 0
	if !s.c.Due(t0) {
		t.Fatal("first round not due")
	}
	u, opt := s.round(t0, false)
	if len(u) != 5 || u[2] || opt != NoPeer {
		t.Fatalf("unlimited: %v optimistic %d", u, opt)
	}
	if s.c.Due(t0.Add(9*time.Second)) || !s.c.Due(t0.Add(10*time.Second)) {
		t.Fatal("Due does not follow RechokeEvery")
	}
}
