package engine

import (
	"slices"
	"sync/atomic"
	"time"

	"gotorrentserver/engine/choke"
	"gotorrentserver/engine/storage"
)

// Automatic upload slots (Config.UnchokeSlots == 0): the client's ticker
// sizes the regular upload slots of all torrents together (choke.Uplink)
// and shares them by demand (choke.Share); each session's choker then
// decides who gets its share. Sessions report what their peers did at each
// tick and read their share back, both through atomics: the ticker never
// touches session state.

const (
	// autoRechokeEvery and autoSeedTurn shorten the fixed-slot cadence:
	// with hundreds of slots the rounds are what keeps turns fair when
	// the uplink is saturated, and a 30-second turn would leave a peer
	// unserved for longer than anyone measures fairness over.
	autoRechokeEvery = 5 * time.Second
	autoSeedTurn     = 15 * time.Second

	// sendBudget bounds the unsent bytes of all peers together; each
	// unchoked peer's share of it caps its send buffer (sendBound).
	sendBudget = 256 << 20
	// minSendBound and the 200 ms of a peer's rate keep its socket fed
	// between two drain polls (at most 64 ms apart) and a disk read.
	minSendBound  = 64 << 10
	sendBoundRate = 5 // 1/5 s of the peer's upload rate
)

// uplinkShare is one session's side of the slot sizing. The session writes
// the report, the client's ticker the budget; each reads the other's.
type uplinkShare struct {
	interested atomic.Int32 // peers interested in us
	unchoked   atomic.Int32 // of them unchoked
	starved    atomic.Int32 // of those, waiting on us with requests queued
	capped     atomic.Bool  // the torrent's own upload limit held sends back
	budget     atomic.Int32 // regular slots granted; 0 before the first round
}

// autoSlots reports whether the client sizes upload slots itself.
func (c *Client) autoSlots() bool { return c.cfg.UnchokeSlots <= 0 }

// slotsRound runs on the ticker: it reads every session's report, sizes
// the slots and hands out the budgets. reports are the sessions that have
// peers; the others keep a budget of zero (one slot).
func (c *Client) slotsRound(sessions []*Session) {
	var load choke.Load
	demand := make([]int, len(sessions))
	for i, s := range sessions {
		sh := &s.slots
		interested, unchoked := int(sh.interested.Load()), int(sh.unchoked.Load())
		load.Interested += interested
		load.Unchoked += unchoked
		load.Starved += int(sh.starved.Load())
		demand[i] = interested
		if sh.capped.Load() {
			// More slots would not move more past its own limit.
			demand[i] = min(interested, unchoked+1)
		}
	}
	load.Rate = c.up.perSecond.Load()
	load.Limited = c.up.hit.Swap(false)
	slots := c.uplink.Round(load)
	for i, b := range choke.Share(slots, demand) {
		sessions[i].slots.budget.Store(int32(b))
	}
	c.sendShare.Store(int64(sendBudget / max(load.Unchoked, 1)))
	c.lastLoad.Store(&roundResult{load, slots})
}

// report publishes what this session's peers did for the next round.
func (s *Session) reportSlots() {
	var interested, unchoked, starved int32
	capped := s.limits.up.blocked()
	for _, p := range s.swarm.peers {
		if !p.peerInterest {
			continue
		}
		interested++
		if p.amChoking {
			continue
		}
		unchoked++
		if len(p.uploads) > 0 && !capped && (!p.blocking || ownBacklog(p.conn)) {
			starved++
		}
	}
	sh := &s.slots
	sh.interested.Store(interested)
	sh.unchoked.Store(unchoked)
	sh.starved.Store(starved)
	sh.capped.Store(capped)
}

// ownBacklog reports whether most of what c has buffered waits for our
// event loop rather than for the peer: a fast peer whose blocks pile up
// in front of a busy loop waits on us as much as one with requests not
// yet read, though its buffer is full.
func ownBacklog(c PeerConn) bool {
	return 2*c.Unsent() < c.Buffered()
}

// slotLimit is the upload slots this torrent may use now, the optimistic
// one included.
func (s *Session) slotLimit() int {
	if !s.c.autoSlots() {
		return s.c.cfg.UnchokeSlots
	}
	if b := s.slots.budget.Load(); b > 0 {
		return int(b) + 1
	}
	// No share yet (no round since it had interested peers, or tests
	// that drive the clock themselves): the fixed default.
	return choke.DefaultSlots
}

// fillSlots unchokes waiting interested peers, longest-waiting first, while
// the torrent is under its slots, and rechokes at once when it is over: a
// changed budget is used now rather than at the next rechoke.
func (s *Session) fillSlots() {
	limit := s.slotLimit()
	s.upload.choker.Slots = limit
	if s.dl.pick == nil {
		return
	}
	free := limit - s.swarm.unchoked()
	if free < 0 {
		// The budget shrank (a probe for more slots was undone, or a
		// global limit cut them): waiting for the next round would
		// keep the extra peers splitting the rate for seconds.
		s.rechoke()
		return
	}
	if free == 0 {
		return
	}
	var waiting []*peer
	for _, p := range s.swarm.peers {
		if p.amChoking && p.peerInterest {
			waiting = append(waiting, p)
		}
	}
	if len(waiting) == 0 {
		return
	}
	slices.SortFunc(waiting, func(a, b *peer) int { return a.unchokedAt.Compare(b.unchokedAt) })
	for _, p := range waiting[:min(free, len(waiting))] {
		s.unchokeNow(p)
	}
}

// unchokeNow unchokes p between rounds and tells the choker, so its turn
// counts from now.
func (s *Session) unchokeNow(p *peer) {
	s.setChoking(p, false)
	s.upload.choker.Unchoked(choke.PeerID(p.id), s.now)
}

// updateSendBound sets how many unsent bytes p may have before we stop
// reading blocks for it: a fifth of a second of its rate, at least
// minSendBound, at most maxOutbound and its share of sendBudget. Without
// it 2,000 peers on 1 MiB/s links each held a full megabyte.
func (s *Session) updateSendBound(p *peer) {
	b := max(p.up.Rate(s.now)/sendBoundRate, minSendBound)
	if share := s.c.sendShare.Load(); share > 0 {
		b = min(b, max(share, minSendBound))
	}
	p.sendBound = int32(min(b, maxOutbound))
}

// UploadStats is the upload side over all torrents, as of the ticker's last
// round: the slots, who uses them and how the read cache keeps up.
type UploadStats struct {
	Slots      int // regular upload slots over all torrents (automatic slots); 0 with fixed slots
	Interested int // peers interested in us
	Unchoked   int // of them, unchoked
	Starved    int // of those, waiting on us with requests queued
	Saturated  bool
	Cache      storage.CacheStats
}

// UploadStats reports the upload side. Safe for concurrent use.
func (c *Client) UploadStats() UploadStats {
	st := UploadStats{Cache: c.cache.Stats()}
	if p := c.lastLoad.Load(); p != nil {
		st.Slots, st.Interested, st.Unchoked, st.Starved = p.slots, p.Interested, p.Unchoked, p.Starved
		st.Saturated = choke.Saturated(p.Load)
	}
	return st
}

// roundResult is a slots round's input and outcome, kept for UploadStats.
type roundResult struct {
	choke.Load
	slots int
}
