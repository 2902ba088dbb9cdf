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

// Uplink decides how many peers all torrents together unchoke. Slow peers
// (a few MiB/s behind a long round trip) each take a small share, and a
// seedbox's uplink needs hundreds of them, so while more slots move more
// bytes the slots grow: eightfold, then to every interested peer once a
// probe passed, each probe judged over two rounds once its peers are
// unchoked (one, if it clearly passed). A probe must bring a quarter of the gain its new peers would if each took what
// the old ones did, at most half again the rate; one that does not is
// undone and the slots held there for a while: our own side (CPU, disk)
// was the bottleneck, and more peers would only split the same rate at a
// cost per connection (1,000 fast loopback leechers unchoked at once moved
// a third less than four). A probe that passed is kept even when the next one fails, so peers that each need
// little keep their slots: 2,000 peers of 1 MiB/s over an uplink of
// 1 GB/s are all served at half their rate, not half of them at full rate
// in turns.
//
// Under a global upload limit the limit is the bottleneck and is shared by
// every interested peer, until each one's share would fall below
// MinPeerRate: then the slots are cut to keep MinPeerRate each and the
// torrents' chokers rotate the waiting peers through them. Taking turns is
// the fallback, not the rule: a peer choked for a turn loses its pipeline
// and its place in the measured window.
//
// libtorrent's rate-based choker opens a slot while the slowest unchoked
// peer beats a threshold that rises by 2 KiB/s per slot, which stops near
// 500 slots of 1 MiB/s peers whatever the link; this one measures what
// more slots bring instead.
//
// Plain data; the client's ticker is its only caller.
type Uplink struct {
	MinSlots    int
	MaxSlots    int
	MinPeerRate int64

	slots int
	// The rates of the last two rounds: a one-second rate swings by a
	// third on its own, so a probe is judged by the mean of two rounds
	// against the better of the two before it (a ramp's first second
	// would make any probe look good).
	rates [2]int64
	// A probe in progress: the slots and mean rate before it, the gain
	// it must bring, the rounds left until it is judged and the rates
	// seen since.
	base     int
	baseRate int64
	need     float64
	judgeIn  int
	sum      int64
	// heldFor counts down the rounds before the next probe after a
	// failed one; passed says the last probe passed.
	heldFor int
	passed  bool
	// wasSaturated is the last round's Saturated: the starved count is
	// a snapshot, and one round in three shows none of a few fast
	// peers waiting on us, so a probe needs two unsaturated rounds.
	wasSaturated bool
}

// Probe tuning.
const (
	probeGrowth  = 8   // a probe not right after a passed one multiplies the slots by this
	maxProbeGain = 0.5 // the most gain a probe must bring
	probeRounds  = 3   // rounds between a probe and its judgement
	// probeLag is the rounds a probe's slots take to show in the load:
	// sessions take up a budget at their next tick and report at the
	// one after.
	probeLag   = 1
	holdRounds = 30 // rounds without probing after a failed probe
)

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
	want := l.Interested + u.MinSlots
	cur := u.Slots()
	u.rates[0], u.rates[1] = u.rates[1], l.Rate
	saturated := Saturated(l) || u.wasSaturated
	u.wasSaturated = Saturated(l)
	switch {
	case l.Limited:
		u.judgeIn, u.heldFor = 0, 0
		cur = want
		if u.MinPeerRate > 0 && l.Rate > 0 {
			cur = min(cur, int(l.Rate/u.MinPeerRate))
		}
	case u.judgeIn > 0:
		u.judgeIn--
		if u.judgeIn >= probeRounds-probeLag {
			break
		}
		u.sum += l.Rate
		need := u.need * float64(u.baseRate)
		switch {
		case float64(l.Rate) >= need:
			// One round is enough to pass: a ramp over a few hundred
			// slow peers should not wait on noise.
			u.judgeIn, u.passed = 0, true
		case u.judgeIn == 0 && float64(u.sum)/(probeRounds-probeLag) < need:
			cur, u.heldFor, u.passed = u.base, holdRounds, false
		}
	case l.Interested <= cur:
		// Every interested peer fits: no probe needed, and room for
		// newcomers is free.
		cur = want
	case u.heldFor > 0:
		u.heldFor--
	case saturated:
		// Most unchoked peers already wait on us: hold.
	default:
		u.base, u.baseRate, u.judgeIn, u.sum = cur, max(u.rates[0], u.rates[1]), probeRounds, 0
		// Grow from what is unchoked: each torrent with demand keeps a
		// slot whatever the budget, so 200 torrents unchoke 400 peers
		// under a budget of 8, and a probe to 64 would change nothing.
		from := max(cur, l.Unchoked)
		// A probe right after one that passed goes to every interested
		// peer: slow peers need many slots, and a ramp of eightfold
		// steps spent most of a 20-second window below half the rate.
		// Others go one step: unchoking 5,000 fast loopback leechers
		// for a probe's three rounds cost a third of an 8 s window.
		if cur = want; !u.passed {
			cur = min(want, from*probeGrowth)
		}
		// Peers that get a slot add their rate if our side has room: a
		// quarter of the proportional gain, with noise to spare, says
		// they did, and half again the rate is enough where the new
		// peers would fill any link (512 slots of 1 MiB/s peers grown
		// to 2,000 on a 1 GB/s uplink).
		from = min(from, l.Interested)
		u.need = 1 + min((float64(min(cur, l.Interested))/float64(max(from, 1))-1)/4, maxProbeGain)
	}
	u.slots = min(max(cur, u.MinSlots), u.MaxSlots)
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
