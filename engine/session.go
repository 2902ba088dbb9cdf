package engine

import (
	"log/slog"
	"math/rand"
	randv2 "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/choke"
	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// State is where a torrent is in its life.
type State int

// States, as the API names them.
const (
	StateStopped State = iota
	StateChecking
	StateDownloading
	StateSeeding
	StateError
	StateMetadata
	// StateQueued: the user wants it running, but the queue's limits on
	// active downloads or seeds hold it back until a slot frees.
	StateQueued
	// StateMoving: its data is being moved to another folder (Client.Move);
	// it goes back to what it was afterwards.
	StateMoving
)

func (s State) String() string {
	return [...]string{"stopped", "checking", "downloading", "seeding", "error", "metadata", "queued", "moving"}[s]
}

// Session is one torrent: a small coordinator over parts that each own one
// concern (lifecycle, swarm and address book, download, upload, discovery,
// web seeds, metadata phase, persistence). Its unexported fields, and its parts,
// belong to its event handlers, which the scheduler runs one at a time:
// nothing else reads or writes them, so they need no locks. Other
// goroutines talk to a session only through its exported methods, which
// post events, and read it only through Snapshot.
type Session struct {
	in inbox
	c  *Client

	// Immutable after creation, except mi: nil for a magnet until its
	// metadata is verified, then set once on the session thread and
	// published through miPub for other goroutines.
	mi      *metainfo.MetaInfo
	miPub   atomic.Pointer[metainfo.MetaInfo]
	ih      metainfo.Hash
	added   time.Time
	snap    atomic.Pointer[Snapshot]
	removed atomic.Bool
	// wakeAt (unix ns) lets the client's ticker skip an idle session until
	// it next has something to do; 0 means tick every second.
	wakeAt atomic.Int64
	// slots is this torrent's side of the automatic upload slots: its
	// report and its budget (uplink.go).
	slots uplinkShare
	// limitWake asks the client to post a wake-up at the global limits'
	// next refill: a global limit held this session back.
	limitWake atomic.Bool

	// The parts, one concern each.
	life    lifecycle   // state, its transitions and the current run (lifecycle.go)
	swarm   swarm       // connected peers (peer.go)
	book    addrBook    // addresses to dial and their backoff (addrbook.go)
	dl      transfer    // picker, pieces in flight, verified set (download.go)
	upload  uploadQueue // peers waiting for reads, and the choker (upload.go)
	disc    discovery   // trackers and the DHT (announce.go, dht.go)
	web     webSeeds    // BEP 19 servers (webseed.go)
	mag     metaPhase   // magnet link, fetching and serving the info dict (magnet.go)
	persist persistence // the resume record's cadence and totals (resume.go)
	mv      mover       // moving the data to another folder (move.go)
	ev      eventMemo   // what the event feed was last told (events.go)

	// Shared by the parts, owned by the coordinator.
	now      time.Time
	store    *storage.Storage
	rng      *rand.Rand
	stats    counters
	settings Settings   // the user's choices for this torrent
	limits   rateLimits // the token buckets enforcing its rates
	dirty    bool       // the snapshot is stale
	queued   bool       // stopped by the queue, not the user (queue.go)
	seedTime seedClock  // time spent seeding (seedlimit.go)
	// limitReached says why the seed limits last stopped the torrent;
	// cleared when it starts again.
	limitReached string
	parked       []parkedJob
	onComplete   []func()
	checkDone    func() // test hook: called when a recheck finishes
}

// counters are the session's byte totals and rates; the API reports them.
type counters struct {
	downloaded, uploaded, wasted int64 // payload bytes since the session started
	down, up                     picker.Rate
}

type pieceBuf struct {
	data []byte
}

func newSession(c *Client, mi *metainfo.MetaInfo, dir string, now time.Time) *Session {
	s := newSessionCommon(c, mi.InfoHash, dir, now, mi.Trackers)
	s.mi = mi
	s.miPub.Store(mi)
	s.mag.srv = ext.NewMetadataServer(mi.InfoBytes)
	s.publish()
	return s
}

func newSessionCommon(c *Client, ih metainfo.Hash, dir string, now time.Time, tiers [][]string) *Session {
	seed := now.UnixNano() ^ int64(ih[0])<<40 ^ int64(ih[1])<<48
	s := &Session{
		c: c, ih: ih, added: now, now: now, settings: Settings{Dir: dir},
		rng:    smallRand(seed, 1),
		swarm:  newSwarm(),
		book:   newAddrBook(),
		dl:     newTransfer(),
		upload: newUploadQueue(),
	}
	s.upload.choker = choke.New(smallRand(seed, 2))
	if c.autoSlots() {
		s.upload.choker.RechokeEvery = autoRechokeEvery
		s.upload.choker.SeedTurn = autoSeedTurn
	} else {
		s.upload.choker.Slots = c.cfg.UnchokeSlots
	}
	s.disc.trackers = tracker.NewTiers(tiers, randv2.New(randv2.NewPCG(uint64(seed), 3)))
	s.disc.key = s.rng.Uint32()
	return s
}

// InfoHash identifies the torrent. Safe for concurrent use.
func (s *Session) InfoHash() metainfo.Hash { return s.ih }

// MetaInfo is the torrent's metainfo, nil while a magnet link's metadata is
// being fetched. Safe for concurrent use.
func (s *Session) MetaInfo() *metainfo.MetaInfo { return s.miPub.Load() }

// post queues ev for this session. Safe for concurrent use.
func (s *Session) post(ev event) { s.c.sched.post(s, ev) }

// evFunc adapts a function to an event, for one-off commands.
type evFunc func(s *Session)

func (f evFunc) handle(s *Session) { f(s) }

// afterBatch runs after each batch of events: request more blocks where
// pipelines have room and publish a snapshot if anything changed.
func (s *Session) afterBatch() {
	defer s.updateWake()
	s.retryParked()
	if s.life.state == StateMetadata {
		s.fetchMetadata()
	}
	if s.life.state == StateDownloading {
		for _, p := range s.swarm.peers {
			s.fillRequests(p)
		}
		s.fillWebSeeds()
	}
	// Only peers with requests queued: a seed with 5,000 connections and
	// 4 upload slots spent a fifth of its CPU walking the whole peer map
	// here after every batch.
	for _, p := range s.upload.order(s.upLimited()) {
		s.serveUploads(p)
		if len(p.uploads) == 0 || p.closed || p.blocking || p.reading >= maxReading {
			// Back when it drains (Writable) or a read finishes
			// (readDone): 2,000 slow readers with full send buffers
			// walked here after every batch cost a tenth of a core.
			delete(s.upload.waiting, p.id)
		}
	}
}

// upLimited reports whether an upload limit (the torrent's or the
// client's) may stop serving part way through the waiting peers.
func (s *Session) upLimited() bool {
	_, own := s.limits.up.tokens()
	return own || s.c.up.rate.Load() > 0
}

// have is the set of verified pieces (see transfer.have).
func (s *Session) have() *bitset.BitSet { return s.dl.have(s.mi) }

// bitsetFor is an empty piece set sized for mi (empty when mi is unknown).
func bitsetFor(mi *metainfo.MetaInfo) *bitset.BitSet {
	if mi == nil {
		return bitset.New(0)
	}
	return bitset.New(uint(mi.NumPieces()))
}

func (s *Session) numPieces() int {
	if s.mi == nil {
		return 0
	}
	return s.mi.NumPieces()
}

// running: peers are welcome (fetching metadata, checking, transferring).
func (s *Session) running() bool {
	switch s.life.state {
	case StateMetadata, StateChecking, StateDownloading, StateSeeding:
		return true
	}
	return false
}

func (s *Session) complete() bool { return s.dl.complete() }

func (s *Session) left() int64 { return s.dl.left(s.mi) }

func (s *Session) setError(err error) {
	s.logAt(slog.LevelError, "torrent error", "state", s.life.state.String(), "error", err.Error())
	s.life.err = err
	s.to(onFail)
	s.closeAllPeers()
	s.dirty = true
	s.publish()
}

// smallRand is a math/rand generator over a 16-byte PCG state. The picker
// and choker take a *rand.Rand; rand.NewSource would cost ~5 KB per session,
// which 10,000 idle torrents cannot afford.
func smallRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(&pcgSource{randv2.NewPCG(uint64(seed), stream)})
}

type pcgSource struct{ *randv2.PCG }

func (p *pcgSource) Int63() int64    { return int64(p.Uint64() >> 1) }
func (p *pcgSource) Seed(seed int64) { p.PCG.Seed(uint64(seed), 0) }
