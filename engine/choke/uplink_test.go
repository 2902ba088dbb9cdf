package choke

import (
	"slices"
	"testing"
)

// Slow peers that each take little: the slots double while peers wait and
// the uplink has room, until every interested peer is served.
func TestUplinkGrowsWhilePeersWaitAndLinkHasRoom(t *testing.T) {
	u := NewUplink()
	unchoked, rounds := 0, 0
	for unchoked < 2000 && rounds < 20 {
		slots := u.Round(Load{Interested: 2000, Unchoked: unchoked, Rate: int64(unchoked) << 20})
		unchoked = min(slots, 2000)
		rounds++
	}
	if unchoked < 2000 {
		t.Fatalf("after %d rounds %d of 2000 slow peers unchoked", rounds, unchoked)
	}
	if rounds > 10 {
		t.Fatalf("took %d rounds to serve 2000 slow peers; doubling from %d needs 8", rounds, DefaultMinSlots)
	}
	// Everyone served: the slots hold, leaving room for newcomers.
	if got := u.Round(Load{Interested: 2000, Unchoked: 2000, Rate: 2000 << 20}); got < 2000 {
		t.Fatalf("slots fell to %d with all 2000 peers served", got)
	}
}

// A saturated uplink stops growing, and cuts the slots to what keeps each
// unchoked peer above MinPeerRate.
func TestUplinkStopsWhenSaturated(t *testing.T) {
	u := NewUplink()
	for range 4 {
		u.Round(Load{Interested: 1000, Unchoked: u.Slots(), Rate: 100 << 20})
	}
	grown := u.Slots()
	// Most unchoked peers now wait on us: hold.
	if got := u.Round(Load{Interested: 1000, Unchoked: grown, Starved: grown, Rate: 100 << 20}); got != grown {
		t.Fatalf("starved peers: slots %d -> %d, want held", grown, got)
	}
	// A global limit of 1 MiB/s over 128 peers would give each 8 KiB/s.
	got := u.Round(Load{Interested: 1000, Unchoked: grown, Rate: 1 << 20, Limited: true})
	if want := (1 << 20) / DefaultMinPeerRate; got != want {
		t.Fatalf("limited to 1 MiB/s: %d slots, want %d (each peer at least %d B/s)", got, want, DefaultMinPeerRate)
	}
	// Never below the floor, never above the ceiling.
	if got := u.Round(Load{Interested: 10, Unchoked: 10, Rate: 1, Limited: true}); got != DefaultMinSlots {
		t.Fatalf("slots %d below the floor %d", got, DefaultMinSlots)
	}
	u.MaxSlots = 100
	for range 10 {
		u.Round(Load{Interested: 5000, Unchoked: u.Slots()})
	}
	if u.Slots() != 100 {
		t.Fatalf("slots %d, want the ceiling 100", u.Slots())
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
