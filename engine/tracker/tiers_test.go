package tracker

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func urlsOf(st []TrackerStatus) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.URL)
	}
	return out
}

func TestTiersShuffleOncePerTier(t *testing.T) {
	list := [][]string{{"a", "b", "c", "d", "e", "f"}, {"x", "y", "z"}, {}, {"", "a"}}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		tr := NewTiers(list, rand.New(rand.NewPCG(seed, 1)))
		st := tr.Statuses()
		if tr.Len() != 9 || len(st) != 9 {
			t.Fatalf("Len %d, %d statuses; want 9 (empty, duplicate dropped)", tr.Len(), len(st))
		}
		for i, s := range st {
			wantTier := 0
			if i >= 6 {
				wantTier = 1
			}
			if s.Tier != wantTier || s.Status != StatusPending || s.Seeders != -1 {
				t.Fatalf("status %d: %+v", i, s)
			}
		}
		seen[urlsOf(st)[0]] = true
		// The order is fixed at creation: reading it again changes nothing.
		if a, b := urlsOf(st), urlsOf(tr.Statuses()); a[0] != b[0] || a[5] != b[5] {
			t.Fatal("order changed between snapshots")
		}
	}
	if len(seen) < 2 {
		t.Errorf("20 seeds always put %v first: tiers are not shuffled", seen)
	}
	if _, ok := NewTiers(nil, nil).Next(); ok {
		t.Error("Next on no trackers returned ok")
	}
}

func TestTiersWalkAndPromote(t *testing.T) {
	tr := NewTiers([][]string{{"a1", "a2"}, {"b1", "b2"}}, rand.New(rand.NewPCG(1, 2)))
	order := urlsOf(tr.Statuses())
	now := t0
	if !tr.Due(now) {
		t.Fatal("first announce not due immediately")
	}
	// Every tracker of tier 0 fails, then the second of tier 1 succeeds.
	var tried []string
	for i := 0; i < 4; i++ {
		u, _ := tr.Next()
		tried = append(tried, u)
		tr.Announcing(u)
		if tr.Due(now) {
			t.Fatal("due while an announce is in flight")
		}
		if i < 3 {
			tr.Failure(u, errors.New("refused"), now)
			if !tr.Due(now) {
				t.Fatalf("after failure %d the next tracker is not due at once", i)
			}
			continue
		}
		tr.Success(u, AnnounceResponse{Interval: 20 * time.Minute, Seeders: 5, Leechers: 2,
			Peers: make([]netip.AddrPort, 3), TrackerID: "tid"}, now)
	}
	for i := range tried {
		if tried[i] != order[i] {
			t.Fatalf("tried %v, want tier order %v", tried, order)
		}
	}
	winner := order[3]
	st := tr.Statuses()
	if got := urlsOf(st); got[2] != winner || got[3] != order[2] {
		t.Fatalf("after success order = %v, want %s at the front of tier 1", got, winner)
	}
	if s := st[2]; s.Status != StatusWorking || s.Seeders != 5 || s.Leechers != 2 || s.Peers != 3 ||
		s.Interval != 20*time.Minute || !s.LastAnnounce.Equal(now) || s.LastError != "" {
		t.Fatalf("winner status %+v", s)
	}
	if s := st[0]; s.Status != StatusError || s.LastError != "refused" {
		t.Fatalf("failed status %+v", s)
	}
	if tr.TrackerID(winner) != "tid" {
		t.Errorf("tracker id not kept")
	}
	if w, ok := tr.Working(); !ok || w != winner {
		t.Errorf("Working = %q", w)
	}
	// BEP 12: the next round starts from the first tier again, after the interval.
	if u, _ := tr.Next(); u != order[0] {
		t.Errorf("next round starts at %s, want %s", u, order[0])
	}
	if tr.Due(now.Add(19*time.Minute)) || !tr.Due(now.Add(20*time.Minute)) {
		t.Errorf("next announce at %v, want now+20m", tr.NextAnnounceAt())
	}
	if st[0].NextAnnounce != now.Add(20*time.Minute) || !st[1].NextAnnounce.IsZero() {
		t.Errorf("NextAnnounce shown on the wrong tracker: %+v", st[:2])
	}
	// Snapshots are copies.
	st[0].URL = "mutated"
	if tr.Statuses()[0].URL == "mutated" {
		t.Error("Statuses returned shared memory")
	}
}

func TestTiersBackoff(t *testing.T) {
	tr := NewTiers([][]string{{"a"}, {"b"}}, nil)
	now := t0
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	var lastWait time.Duration
	for round := 0; round < 12; round++ {
		for i := 0; i < 2; i++ {
			u, _ := tr.Next()
			tr.Announcing(u)
			tr.Failure(u, nil, now)
		}
		wait := tr.NextAnnounceAt().Sub(now)
		lastWait = wait
		if round < len(want) && wait != want[round] {
			t.Fatalf("round %d backoff %v, want %v", round, wait, want[round])
		}
		if wait > 30*time.Minute || wait <= 0 {
			t.Fatalf("round %d backoff %v outside (0, 30m]", round, wait)
		}
		if tr.Due(now) {
			t.Fatal("due during backoff")
		}
		tr.WantPeers(now) // must not cut a backoff short
		if tr.Due(now) {
			t.Fatal("WantPeers overrode the error backoff")
		}
		now = tr.NextAnnounceAt()
	}
	if lastWait != 30*time.Minute {
		t.Errorf("backoff after 12 rounds = %v, want the 30 min cap", lastWait)
	}
	u, _ := tr.Next()
	tr.Success(u, AnnounceResponse{Interval: time.Hour}, now)
	if tr.NextAnnounceAt() != now.Add(time.Hour) {
		t.Errorf("success did not reset the schedule: %v", tr.NextAnnounceAt().Sub(now))
	}
}

func TestTiersIntervalRules(t *testing.T) {
	tests := []struct {
		name          string
		interval, min time.Duration
		want          time.Duration
	}{
		{"tracker interval", 25 * time.Minute, 0, 25 * time.Minute},
		{"missing interval", 0, 0, defaultInterval},
		{"tiny interval floored", 5 * time.Second, 0, minAnnounceInterval},
		{"min interval wins", 2 * time.Minute, 10 * time.Minute, 10 * time.Minute},
		{"huge interval capped", 1000 * time.Hour, 0, maxAnnounceInterval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTiers([][]string{{"a"}}, nil)
			tr.Success("a", AnnounceResponse{Interval: tc.interval, MinInterval: tc.min}, t0)
			if got := tr.NextAnnounceAt().Sub(t0); got != tc.want {
				t.Fatalf("next announce after %v, want %v", got, tc.want)
			}
		})
	}
	// WantPeers honours min interval; AnnounceNow (events) does not.
	tr := NewTiers([][]string{{"a"}}, nil)
	tr.Success("a", AnnounceResponse{Interval: time.Hour, MinInterval: 15 * time.Minute}, t0)
	tr.WantPeers(t0.Add(time.Minute))
	if got := tr.NextAnnounceAt().Sub(t0); got != 15*time.Minute {
		t.Fatalf("WantPeers scheduled at +%v, want +15m", got)
	}
	tr.WantPeers(t0.Add(40 * time.Minute))
	if got := tr.NextAnnounceAt().Sub(t0); got != 15*time.Minute {
		t.Fatalf("WantPeers moved the announce later to +%v", got)
	}
	tr.AnnounceNow()
	if !tr.Due(t0.Add(time.Second)) {
		t.Fatal("AnnounceNow did not make an announce due")
	}
	// Results for unknown URLs are ignored.
	tr.Failure("zzz", errors.New("x"), t0)
	if s := tr.Statuses(); len(s) != 1 || s[0].Status != StatusWorking {
		t.Fatalf("unknown URL changed state: %+v", s)
	}
}
