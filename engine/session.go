package engine

import (
	"math/rand"
	randv2 "math/rand/v2"
	"net/netip"
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
)

func (s State) String() string {
	return [...]string{"stopped", "checking", "downloading", "seeding", "error", "metadata"}[s]
}

// Session is one torrent. Its unexported fields belong to its event
// handlers, which the scheduler runs one at a time: nothing else reads or
// writes them, so they need no locks. Other goroutines talk to a session only
// through its exported methods, which post events, and read it only through
// Snapshot.
type Session struct {
	in inbox
	c  *Client

	// Immutable after creation, except mi: nil for a magnet until its
	// metadata is verified, then set once on the session thread and
	// published through meta for other goroutines.
	mi      *metainfo.MetaInfo
	meta    atomic.Pointer[metainfo.MetaInfo]
	magnet  *metainfo.Magnet
	ih      metainfo.Hash
	added   time.Time
	snap    atomic.Pointer[Snapshot]
	removed atomic.Bool
	// wakeAt (unix ns) lets the client's ticker skip an idle session until
	// it next has something to do; 0 means tick every second.
	wakeAt atomic.Int64

	// Session-owned state.
	state     State
	err       error
	now       time.Time
	started   time.Time
	store     *storage.Storage
	pick      *picker.Picker
	choker    *choke.Choker
	rng       *rand.Rand
	peers     map[picker.PeerID]*peer
	nextID    picker.PeerID
	known     map[netip.AddrPort]*knownPeer
	pieces    map[int]*pieceBuf
	uploaders map[picker.PeerID]*peer // peers with requests queued for upload
	verifying int64                   // bytes of complete pieces out for hashing and writing
	trackers  *tracker.Tiers
	trkKey    uint32
	pendingEv tracker.Event // to send with the next announce
	stats     counters
	// settings are the user's choices for this torrent; limits holds the
	// token buckets that enforce its rates.
	settings  Settings
	limits    rateLimits
	dirty     bool
	stopHave  *bitset.BitSet // verified pieces kept across stop/start
	checkDone func()         // test hook: called when a recheck finishes
	parked    []parkedJob    // jobs waiting for room on their lane (jobs.go)
	// runGen changes at every start, check and stop, so a job's outcome
	// from an earlier run is recognised and dropped.
	runGen uint32
	// checkThenStop: the running check was asked for while stopped.
	checkThenStop bool
	onComplete    []func()

	fetch       *ext.MetadataFetcher // metadata phase only
	metaSrv     *ext.MetadataServer  // once the info dict is known
	hashingMeta bool

	joined     bool // trackers heard "started" for this run
	dhtRunning bool
	dhtNext    time.Time

	resumeDirty bool
	rechecks    int
	lastResume  time.Time
	restored    bool                                 // came back from the persister; its record is current
	base        struct{ downloaded, uploaded int64 } // totals from earlier runs
}

// counters are the session's byte totals and rates; the API reports them.
type counters struct {
	downloaded, uploaded, wasted int64 // payload bytes since the session started
	down, up                     picker.Rate
}

type pieceBuf struct {
	data []byte
}

// knownPeer is an address learned from a tracker, an incoming connection or
// the user, kept to redial with backoff.
type knownPeer struct {
	addr      netip.AddrPort
	connected bool
	dialing   bool
	failures  int
	nextDial  time.Time
	source    string
	lastPeer  *PeerSnapshot // what we knew when it was last connected
}

func newSession(c *Client, mi *metainfo.MetaInfo, dir string, now time.Time) *Session {
	s := newSessionCommon(c, mi.InfoHash, dir, now, mi.Trackers)
	s.mi = mi
	s.meta.Store(mi)
	s.metaSrv = ext.NewMetadataServer(mi.InfoBytes)
	s.publish()
	return s
}

func newSessionCommon(c *Client, ih metainfo.Hash, dir string, now time.Time, tiers [][]string) *Session {
	seed := now.UnixNano() ^ int64(ih[0])<<40 ^ int64(ih[1])<<48
	s := &Session{
		c: c, ih: ih, added: now, now: now, settings: Settings{Dir: dir},
		rng:       smallRand(seed, 1),
		peers:     map[picker.PeerID]*peer{},
		known:     map[netip.AddrPort]*knownPeer{},
		pieces:    map[int]*pieceBuf{},
		uploaders: map[picker.PeerID]*peer{},
	}
	s.choker = choke.New(smallRand(seed, 2))
	if c.cfg.UnchokeSlots > 0 {
		s.choker.Slots = c.cfg.UnchokeSlots
	}
	s.trackers = tracker.NewTiers(tiers, randv2.New(randv2.NewPCG(uint64(seed), 3)))
	s.trkKey = s.rng.Uint32()
	return s
}

// InfoHash identifies the torrent. Safe for concurrent use.
func (s *Session) InfoHash() metainfo.Hash { return s.ih }

// MetaInfo is the torrent's metainfo, nil while a magnet link's metadata is
// being fetched. Safe for concurrent use.
func (s *Session) MetaInfo() *metainfo.MetaInfo { return s.meta.Load() }

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
	if s.state == StateMetadata {
		s.fetchMetadata()
	}
	if s.state == StateDownloading {
		for _, p := range s.peers {
			s.fillRequests(p)
		}
	}
	// Only peers with requests queued: a seed with 5,000 connections and
	// 4 upload slots spent a fifth of its CPU walking the whole peer map
	// here after every batch.
	for id, p := range s.uploaders {
		s.serveUploads(p)
		if len(p.uploads) == 0 || p.closed {
			delete(s.uploaders, id)
		}
	}
}

// have is the set of verified pieces: the picker's while transferring, the
// one kept across a stop (or from the resume record) otherwise, so a
// stopped torrent still shows what it has.
func (s *Session) have() *bitset.BitSet {
	switch {
	case s.pick != nil:
		return s.pick.Have()
	case s.stopHave != nil && s.mi != nil:
		return s.stopHave
	}
	return bitsetFor(s.mi)
}

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
	switch s.state {
	case StateMetadata, StateChecking, StateDownloading, StateSeeding:
		return true
	}
	return false
}

func (s *Session) complete() bool { return s.pick != nil && s.pick.Missing() == 0 }

func (s *Session) left() int64 {
	if s.mi == nil {
		return 0
	}
	have := s.have()
	left := s.mi.TotalLength
	for i, ok := have.NextSet(0); ok && int(i) < s.mi.NumPieces(); i, ok = have.NextSet(i + 1) {
		left -= s.mi.PieceSize(int(i))
	}
	return left
}

func (s *Session) setError(err error) {
	s.err = err
	s.state = StateError
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
