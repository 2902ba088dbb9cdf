package choke

import (
	"slices"
	"testing"
)

// While the uplink has room every interested peer is served at once:
// 2,000 slow peers need no ramp of rounds.
func TestUplinkServesEveryoneWhileLinkHasRoom(t *testing.T) {
	u := NewUplink()
	if got := u.Round(Load{Interested: 2000, Unchoked: 4, Rate: 4 << 20}); got < 2000 {
		t.Fatalf("%d slots for 2000 interested peers and an uplink with room", got)
	}
	// Saturated by CPU at 400 MiB/s: 2,000 peers still get 200 KiB/s
	// each, well above the floor, so all stay unchoked.
	if got := u.Round(Load{Interested: 2000, Unchoked: 2000, Starved: 1500, Rate: 400 << 20}); got < 2000 {
		t.Fatalf("saturated at 400 MiB/s: %d slots for 2000 peers", got)
	}
}

// Once saturated, the slots are cut so each unchoked peer keeps
// MinPeerRate; the rest take turns.
func TestUplinkCutsToMinPeerRateWhenSaturated(t *testing.T) {
	u := NewUplink()
	u.Round(Load{Interested: 1000, Unchoked: 8, Rate: 1 << 20})
	// Most unchoked peers wait on us at 10 MiB/s.
	if got, want := u.Round(Load{Interested: 1000, Unchoked: 1000, Starved: 900, Rate: 10 << 20}), (10<<20)/DefaultMinPeerRate; got != want {
		t.Fatalf("starved at 10 MiB/s: %d slots, want %d", got, want)
	}
	// A global limit of 1 MiB/s.
	if got, want := u.Round(Load{Interested: 1000, Unchoked: 160, Rate: 1 << 20, Limited: true}), (1<<20)/DefaultMinPeerRate; got != want {
		t.Fatalf("limited to 1 MiB/s: %d slots, want %d", got, want)
	}
	// Starved peers (fast ones our side cannot keep up with) add no
	// slots: more would split the same rate.
	u2 := NewUplink()
	if got := u2.Round(Load{Interested: 5000, Unchoked: 4, Starved: 4, Rate: 1 << 30}); got != DefaultMinSlots {
		t.Fatalf("starved from the start: %d slots, want the %d held", got, DefaultMinSlots)
	}
	// Fewer starved than half the unchoked is not saturation.
	if got := u.Round(Load{Interested: 1000, Unchoked: 160, Starved: 80, Rate: 1 << 20}); got < 1000 {
		t.Fatalf("unsaturated: %d slots for 1000 peers", got)
	}
	// Never below the floor, never above the ceiling.
	if got := u.Round(Load{Interested: 10, Unchoked: 10, Rate: 1, Limited: true}); got != DefaultMinSlots {
		t.Fatalf("slots %d below the floor %d", got, DefaultMinSlots)
	}
	u.MaxSlots = 100
	if got := u.Round(Load{Interested: 5000, Unchoked: 10}); got != 100 {
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
