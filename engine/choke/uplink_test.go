package choke

import (
	"slices"
	"testing"
)

// rounds feeds u the load a link of capacity bytes/s would show with
// peers each taking perPeer, for n rounds, and returns the last slots.
func rounds(u *Uplink, n, interested int, perPeer, capacity int64) int {
	slots := u.Slots()
	for range n {
		unchoked := min(slots, interested)
		rate := min(int64(unchoked)*perPeer, capacity)
		starved := 0
		if rate == capacity {
			starved = unchoked // all wait on us
		}
		slots = u.Round(Load{Interested: interested, Unchoked: unchoked, Starved: starved, Rate: rate})
	}
	return slots
}

// While more slots move more bytes they grow, eightfold per probe: 2,000
// peers of 1 MiB/s over a 10 GB/s link are all unchoked within a few
// rounds.
func TestUplinkGrowsWhileSlotsRaiseTheRate(t *testing.T) {
	u := NewUplink()
	if got := rounds(u, 15, 2000, 1<<20, 10<<30); got < 2000 {
		t.Fatalf("%d slots for 2000 interested peers and an uplink with room", got)
	}
	// A probe that did raise the rate is kept when the link fills: a
	// 1 GB/s link and 2,000 peers of 1 MiB/s each get half their rate,
	// all unchoked, rather than half of them the full rate in turns.
	u = NewUplink()
	if got := rounds(u, 40, 2000, 1<<20, 1<<30); got < 2000 {
		t.Fatalf("saturated at 1 GiB/s: %d slots for 2000 peers", got)
	}
}

// Fast peers our side cannot keep up with, and none of them seen waiting
// on us (a snapshot can miss it): a probe brings no more bytes, so it is
// undone; the slots stay at the floor, with a probe of one step now and
// then.
func TestUplinkUndoesProbesThatBringNothing(t *testing.T) {
	u := NewUplink()
	var seen []int
	slots := u.Slots()
	for range 80 {
		unchoked := min(slots, 1000)
		slots = u.Round(Load{Interested: 1000, Unchoked: unchoked, Rate: 1600 << 20})
		seen = append(seen, slots)
	}
	if seen[0] != DefaultMinSlots*probeGrowth {
		t.Fatalf("first probe to %d slots, want one step", seen[0])
	}
	floor := 0
	for i, s := range seen[probeRounds:] {
		if s == DefaultMinSlots {
			floor++
		} else if s > DefaultMinSlots*probeGrowth {
			t.Fatalf("round %d: slots %d, a probe grew past %d (%v)", i+probeRounds, s, DefaultMinSlots*probeGrowth, seen)
		}
	}
	if floor < 60 {
		t.Fatalf("at the floor in %d of %d rounds, want most: %v", floor, len(seen)-probeRounds, seen)
	}
	// Many torrents keep a slot each whatever the budget: a probe grows
	// from the peers actually unchoked, not from the budget.
	u = NewUplink()
	if got := u.Round(Load{Interested: 1000, Unchoked: 400, Rate: 400 << 20}); got <= 400 {
		t.Fatalf("probe from 400 unchoked peers to %d slots", got)
	}
	// Demand that fits needs no probe at all.
	u = NewUplink()
	if got := u.Round(Load{Interested: 5, Unchoked: 5, Rate: 1 << 20}); got != DefaultMinSlots+5 {
		t.Fatalf("%d slots for 5 interested peers, want %d", got, DefaultMinSlots+5)
	}
}

// Under a global limit the slots are cut so each unchoked peer keeps
// MinPeerRate; the rest take turns.
func TestUplinkCutsToMinPeerRateWhenLimited(t *testing.T) {
	u := NewUplink()
	if got, want := u.Round(Load{Interested: 1000, Unchoked: 160, Rate: 1 << 20, Limited: true}), (1<<20)/DefaultMinPeerRate; got != want {
		t.Fatalf("limited to 1 MiB/s: %d slots, want %d", got, want)
	}
	// A 100 MiB/s limit shares among all 1,000: 100 KiB/s each.
	if got := u.Round(Load{Interested: 1000, Unchoked: 16, Rate: 100 << 20, Limited: true}); got < 1000 {
		t.Fatalf("limited to 100 MiB/s: %d slots for 1000 peers", got)
	}
	// Never below the floor, never above the ceiling.
	if got := u.Round(Load{Interested: 10, Unchoked: 10, Rate: 1, Limited: true}); got != DefaultMinSlots {
		t.Fatalf("slots %d below the floor %d", got, DefaultMinSlots)
	}
	u.MaxSlots = 100
	if got := u.Round(Load{Interested: 5000, Unchoked: 10, Rate: 1 << 30, Limited: true}); got != 100 {
		t.Fatalf("slots %d, want the ceiling 100", got)
	}
}

func TestShareByDemand(t *testing.T) {
	for _, tc := range []struct {
		slots  int
		demand []int
		want   []int
	}{
		{100, []int{10, 0, 200, 30}, []int{10, 0, 60, 30}},
		{1000, []int{5, 5, 5}, []int{5, 5, 5}},
		// Fewer slots than torrents with demand: each still gets one.
		{2, []int{3, 4, 5, 6}, []int{1, 1, 1, 1}},
		{9, []int{3, 3, 3}, []int{3, 3, 3}},
		{10, []int{100, 100, 100}, []int{3, 3, 4}},
	} {
		got := Share(tc.slots, tc.demand)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Share(%d, %v) = %v, want %v", tc.slots, tc.demand, got, tc.want)
		}
	}
}
