// Package choke decides which peers a torrent uploads to.
//
// A Choker is plain data owned by one torrent session: no I/O, no
// goroutines, no locks. Time comes in as a now argument and randomness from
// an injected *rand.Rand. All methods must be called from the session's
// goroutine only.
//
// Policy, per round (every RechokeEvery):
//
//   - Only peers interested in us get a slot. Uninterested peers are
//     choked even if they were fast, so slots are never held by peers that
//     would not use them; a peer that becomes interested waits at most one
//     round (the session may also call Rechoke early on such events).
//   - Leeching: the Slots-1 interested, non-snubbed peers we download from
//     fastest get the regular slots (tit-for-tat). Equal rates favour peers
//     already unchoked, to avoid churn, then chance.
//   - Seeding: nobody sends us data, so rates cannot reward reciprocation.
//     We use round robin (libtorrent's default seeding choker) with
//     libtorrent's "fastest upload" as the tie-breaker. A peer's turn starts
//     when it gets a slot while not in a turn and lasts SeedTurn (30 s);
//     the Choker records turn starts itself (see PeerInfo.UnchokedAt).
//     Peers in a running turn rank first, fastest upload first, so if they
//     outnumber the slots (Slots was lowered) the slowest loses its place.
//     Then come the others, the one whose last turn began longest ago (or
//     never) first, fastest upload first among equals. With N interested
//     peers and Slots unchoked at a time everyone is unchoked within about
//     ceil(N/Slots) turns. Snubbing is ignored: it describes peers that
//     stopped sending to us.
//   - One more slot is the optimistic unchoke: an interested peer without a
//     regular slot, drawn at random with peers connected for less than a
//     minute weighted 3 to 1 (they have nothing to trade yet), among
//     peers choked last round whenever there are any. It keeps
//     that slot for OptimisticEvery and is left out of the ranking
//     meanwhile; then it competes like everyone else (a good trading
//     partner wins a regular slot; when seeding its turn is over) and the
//     slot goes to someone else. It ends early only if the peer leaves or
//     loses interest.
//   - Slots == 0 means no limit: every interested peer is unchoked and
//     there is no optimistic unchoke.
package choke

import (
	"math/rand"
	"slices"
	"time"
)

// Defaults, after BEP 3 and the mainline client.
const (
	DefaultSlots           = 4
	DefaultRechokeEvery    = 10 * time.Second
	DefaultOptimisticEvery = 30 * time.Second
	DefaultSeedTurn        = 30 * time.Second
	// NewPeerAge and NewPeerWeight: peers younger than NewPeerAge are
	// NewPeerWeight times as likely to get the optimistic unchoke.
	NewPeerAge    = time.Minute
	NewPeerWeight = 3
)

// PeerID is the session's slot number for a connection.
type PeerID int

// NoPeer is returned when there is no optimistic unchoke.
const NoPeer PeerID = -1

// PeerInfo is one connected peer as the session sees it at a rechoke.
type PeerInfo struct {
	ID         PeerID
	Interested bool  // the peer is interested in us
	DownRate   int64 // bytes/s we download from it
	UpRate     int64 // bytes/s we upload to it
	Snubbed    bool  // it has sent us nothing for a while although it unchokes us
	// ConnectedAt is when the connection was established.
	ConnectedAt time.Time
	// UnchokedAt is when we last switched the peer from choked to
	// unchoked; zero if never; kept after the peer is choked again. Round
	// robin uses it only for peers the Choker has not yet unchoked itself
	// (e.g. a Choker created after the peers connected): its own record
	// also notices a turn that ends while the peer stays unchoked.
	UnchokedAt time.Time
}

// Choker holds the choking policy's settings and the little state it keeps
// between rounds. Construct with New; fields may be changed between rounds.
type Choker struct {
	Slots           int // upload slots including the optimistic one; 0 = unlimited
	RechokeEvery    time.Duration
	OptimisticEvery time.Duration
	SeedTurn        time.Duration

	rng          *rand.Rand
	last         time.Time // last Rechoke; zero before the first
	optimistic   PeerID
	optimisticAt time.Time
	unchoked     map[PeerID]bool      // result of the last round
	turns        map[PeerID]time.Time // start of each peer's current or last turn
}

// New returns a Choker with the default settings. Any goroutine may call
// it; the Choker then belongs to one session, and rng must not be shared
// with another goroutine.
func New(rng *rand.Rand) *Choker {
	return &Choker{
		Slots:           DefaultSlots,
		RechokeEvery:    DefaultRechokeEvery,
		OptimisticEvery: DefaultOptimisticEvery,
		SeedTurn:        DefaultSeedTurn,
		rng:             rng,
		optimistic:      NoPeer,
	}
}

// Due reports whether a regular rechoke round is due at now.
// Session goroutine only.
func (c *Choker) Due(now time.Time) bool {
	return c.last.IsZero() || now.Sub(c.last) >= c.RechokeEvery
}

// Rechoke runs one round and returns the peers to unchoke (every other
// peer should be choked) and which of them is the optimistic unchoke, or
// NoPeer. The returned map is new and belongs to the caller.
// Session goroutine only.
func (c *Choker) Rechoke(now time.Time, peers []PeerInfo, seeding bool) (unchoke map[PeerID]bool, optimistic PeerID) {
	c.last = now
	unchoke = make(map[PeerID]bool)
	var cands []PeerInfo
	for _, p := range peers {
		if p.Interested {
			cands = append(cands, p)
		}
	}
	optimistic = NoPeer
	if c.Slots <= 0 {
		for _, p := range cands {
			unchoke[p.ID] = true
		}
	} else {
		// Shuffle first so the stable sorts below break ties at random.
		c.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		// A running optimistic unchoke keeps its own slot and stays out
		// of the ranking until its time is up.
		kept := c.keptOptimistic(now, cands)
		rankable := slices.DeleteFunc(slices.Clone(cands), func(p PeerInfo) bool { return p.ID == kept })
		var ranked []PeerInfo
		if seeding {
			ranked = c.rankSeeding(now, rankable)
		} else {
			ranked = c.rankLeeching(rankable)
		}
		for _, p := range ranked[:min(len(ranked), c.Slots-1)] {
			unchoke[p.ID] = true
		}
		optimistic = kept
		if kept == NoPeer {
			optimistic = c.drawOptimistic(now, cands, unchoke)
		}
		if optimistic != NoPeer {
			unchoke[optimistic] = true
		}
	}
	c.optimistic = optimistic
	c.recordTurns(now, peers, unchoke)
	c.unchoked = unchoke
	return unchoke, optimistic
}

// turnStart is when the peer's current or last turn began: our own record,
// or the session's UnchokedAt for a peer we have none for.
func (c *Choker) turnStart(p PeerInfo) time.Time {
	if t, ok := c.turns[p.ID]; ok {
		return t
	}
	return p.UnchokedAt
}

func (c *Choker) inTurn(now time.Time, p PeerInfo) bool {
	turn := c.SeedTurn
	if turn <= 0 {
		turn = DefaultSeedTurn
	}
	start := c.turnStart(p)
	return c.unchoked[p.ID] && !start.IsZero() && now.Sub(start) < turn
}

// recordTurns starts a turn for every unchoked peer not already in one.
// A peer that stays unchoked past its turn (nobody was waiting longer)
// starts a new turn, so UnchokedAt, which does not change while a peer
// stays unchoked, cannot make it look like it had waited. Departed peers
// are forgotten.
func (c *Choker) recordTurns(now time.Time, peers []PeerInfo, unchoke map[PeerID]bool) {
	turns := make(map[PeerID]time.Time, len(peers))
	for _, p := range peers {
		switch {
		case unchoke[p.ID] && !c.inTurn(now, p):
			turns[p.ID] = now
		case !c.turnStart(p).IsZero():
			turns[p.ID] = c.turnStart(p)
		}
	}
	c.turns = turns
}

// rankLeeching orders non-snubbed candidates by download rate.
func (c *Choker) rankLeeching(cands []PeerInfo) []PeerInfo {
	var r []PeerInfo
	for _, p := range cands {
		if !p.Snubbed {
			r = append(r, p)
		}
	}
	slices.SortStableFunc(r, func(a, b PeerInfo) int {
		if a.DownRate != b.DownRate {
			return cmpDesc(a.DownRate, b.DownRate)
		}
		return boolFirst(c.unchoked[a.ID], c.unchoked[b.ID])
	})
	return r
}

// rankSeeding puts peers in their turn first (fastest upload first), then
// the rest by how long ago their last turn started.
func (c *Choker) rankSeeding(now time.Time, cands []PeerInfo) []PeerInfo {
	inTurn := func(p PeerInfo) bool { return c.inTurn(now, p) }
	r := slices.Clone(cands)
	slices.SortStableFunc(r, func(a, b PeerInfo) int {
		ia, ib := inTurn(a), inTurn(b)
		switch {
		case ia != ib:
			return boolFirst(ia, ib)
		case ia:
			return cmpDesc(a.UpRate, b.UpRate)
		case !c.turnStart(a).Equal(c.turnStart(b)):
			return c.turnStart(a).Compare(c.turnStart(b))
		default:
			return cmpDesc(a.UpRate, b.UpRate)
		}
	})
	return r
}

// keptOptimistic returns the current optimistic peer if its time is not up
// and it is still connected and interested, else NoPeer.
func (c *Choker) keptOptimistic(now time.Time, cands []PeerInfo) PeerID {
	every := c.OptimisticEvery
	if every <= 0 {
		every = DefaultOptimisticEvery
	}
	if c.optimistic == NoPeer || now.Sub(c.optimisticAt) >= every {
		return NoPeer
	}
	for _, p := range cands {
		if p.ID == c.optimistic {
			return p.ID
		}
	}
	return NoPeer
}

// drawOptimistic picks a new optimistic peer among candidates without a
// regular slot, weighting new peers. Peers unchoked last round (among them
// the outgoing optimistic one) are left out when anyone else can take the
// slot: the point is to give a choked peer a chance, and rotation must
// actually rotate.
func (c *Choker) drawOptimistic(now time.Time, cands []PeerInfo, regular map[PeerID]bool) PeerID {
	total := 0
	weights := make([]int, len(cands))
	for pass := 0; pass < 2 && total == 0; pass++ {
		for i, p := range cands {
			weights[i] = 0
			if regular[p.ID] || (pass == 0 && c.unchoked[p.ID]) {
				continue
			}
			weights[i] = 1
			if now.Sub(p.ConnectedAt) < NewPeerAge {
				weights[i] = NewPeerWeight
			}
			total += weights[i]
		}
	}
	if total == 0 {
		return NoPeer
	}
	x := c.rng.Intn(total)
	for i, w := range weights {
		if x < w {
			c.optimisticAt = now
			return cands[i].ID
		}
		x -= w
	}
	return NoPeer
}

// Unchoked records that the session unchoked id between rounds (a free
// slot went to a newly interested peer): its turn starts at now.
// Session goroutine only.
func (c *Choker) Unchoked(id PeerID, now time.Time) {
	if c.unchoked == nil {
		c.unchoked = map[PeerID]bool{}
	}
	if c.turns == nil {
		c.turns = map[PeerID]time.Time{}
	}
	c.unchoked[id] = true
	c.turns[id] = now
}

// Optimistic is the current optimistic unchoke, or NoPeer.
// Session goroutine only.
func (c *Choker) Optimistic() PeerID { return c.optimistic }

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// boolFirst orders true before false.
func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}
