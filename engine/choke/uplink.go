package choke

import "slices"

// Uplink sizing defaults.
const (
	// DefaultMinSlots is the fewest regular slots the whole client keeps.
	DefaultMinSlots = 8
	// DefaultMaxSlots bounds the regular slots of all torrents together:
	// every unchoked peer may hold a send buffer and a request queue.
	DefaultMaxSlots = 20000
	// DefaultMinPeerRate is what each unchoked peer should still get once
	// the uplink is saturated (64 KiB/s: four blocks a second). Below it
	// more slots only thin everyone out, so slots are cut and peers take
	// turns: a 1 MB/s home uplink then serves 16 at a time (Transmission
	// unchokes 14 per torrent), a 100 MiB/s limit 1,600.
	DefaultMinPeerRate = 64 << 10
)

// Load is what the uplink did during the last round, over all torrents.
type Load struct {
	Interested int // peers interested in us
	Unchoked   int // of them, unchoked
	// Starved counts unchoked peers that had requests waiting which we
	// had not started to serve: our side (disk, CPU, a limit) was the
	// bottleneck. A peer whose own link limits it has a full send buffer
	// instead, and one that asks slowly has nothing waiting.
	Starved int
	Rate    int64 // bytes/s uploaded
	Limited bool  // the global upload limit held sends back
}

// Uplink decides how many peers all torrents together unchoke: every
// interested peer, as long as each can still get MinPeerRate. Slow peers
// (a few MiB/s behind a long round trip) each take a small share, and a
// seedbox's uplink needs hundreds of them, so while the uplink has room
// everyone who asks is served. Once it is saturated (the global limit
// holds sends back, or most unchoked peers wait on us) the uplink's rate
// is shared by all of them, which is as fair as sharing gets (when our
// own side is the bottleneck, no more are added: fast peers would only
// split the same rate), until that share would fall below MinPeerRate: then the slots are cut to what keeps
// each unchoked peer at MinPeerRate, and the torrents' chokers rotate the
// waiting peers through them. Taking turns is the fallback, not the rule:
// a peer choked for a turn loses its pipeline and its place in the
// measured window, and with hundreds of peers turns come round slowly.
//
// libtorrent's rate-based choker opens a slot while the slowest unchoked
// peer beats a threshold that rises by 2 KiB/s per slot, which stops near
// 500 slots of 1 MiB/s peers whatever the link; this one asks where the
// bottleneck is instead.
//
// Plain data; the client's ticker is its only caller.
type Uplink struct {
	MinSlots    int
	MaxSlots    int
	MinPeerRate int64

	slots int
}

// NewUplink returns an Uplink with the default bounds.
func NewUplink() *Uplink {
	return &Uplink{MinSlots: DefaultMinSlots, MaxSlots: DefaultMaxSlots, MinPeerRate: DefaultMinPeerRate}
}

// Slots is the current number of regular slots over all torrents.
func (u *Uplink) Slots() int { return max(u.slots, u.MinSlots) }

// Saturated reports whether l shows the uplink, not the peers, as the
// bottleneck.
func Saturated(l Load) bool {
	return l.Limited || (l.Unchoked > 0 && 2*l.Starved > l.Unchoked)
}

// Round takes the last round's load and returns the regular slots for the
// next one.
func (u *Uplink) Round(l Load) int {
	// Everyone interested, and room for newcomers until the next round.
	slots := l.Interested + u.MinSlots
	if Saturated(l) {
		if !l.Limited {
			// Our side (CPU, disk) is the bottleneck and the unchoked
			// peers would take more: peers added now would only split
			// what they get, at a cost per connection. Hold.
			slots = min(slots, u.Slots())
		}
		if u.MinPeerRate > 0 && l.Rate > 0 {
			slots = min(slots, int(l.Rate/u.MinPeerRate))
		}
	}
	u.slots = min(max(slots, u.MinSlots), u.MaxSlots)
	return u.slots
}

// Share divides slots among torrents by demand (each torrent's interested
// peers, or what it can use), water-filling: a torrent wanting less than an
// equal share gets what it wants and the rest is shared by the others. A
// torrent with demand gets at least one slot even when slots run short, so
// none is starved outright; the result may then exceed slots by at most
// the number of torrents. The result is indexed like demand.
func Share(slots int, demand []int) []int {
	out := make([]int, len(demand))
	order := make([]int, 0, len(demand))
	for i, d := range demand {
		if d > 0 {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return demand[a] - demand[b] })
	left := slots
	for k, i := range order {
		fair := left / (len(order) - k)
		give := max(min(demand[i], fair), 1)
		out[i] = give
		left = max(left-give, 0)
	}
	return out
}
