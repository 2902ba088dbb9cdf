package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/choke"
	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// Config configures a Client. Zero values take the defaults noted.
type Config struct {
	PeerID             [20]byte
	ListenPort         uint16 // what we announce and advertise: the network layer's bound port
	MaxPeersPerTorrent int    // default 80
	MaxPeers           int    // all torrents together; default 5000
	// UnchokeSlots fixes the upload slots of each torrent, the optimistic
	// one included; 0 (the default) sizes them automatically over all
	// torrents to fill the uplink (uplink.go).
	UnchokeSlots int
	DiskWorkers  int   // default 8
	HashWorkers  int   // default one per core
	CacheBytes   int64 // shared read cache; default 64 MiB
	MaxOpenFiles int   // shared descriptor limit; default 512
	// DownloadRoot, when set, is the folder no torrent file may leave: every
	// torrent's folder must be inside it, and no path resolves through a
	// symlink out of it (storage.Options.Root). Absolute, symlinks resolved.
	DownloadRoot string
	Dialer       Dialer // the network layer, bound before the client is built; nil: no outbound peers
	// Listener reports the peer listener's trouble for /alldata's
	// listen_error; nil: none known.
	Listener  ListenStatus
	Tracker   tracker.Config
	Persister Persister // nil: nothing is saved
	DHT       DHT       // nil: no DHT (the default; BEP 5 is opt-in)
	// Tick is the sessions' clock period; default 1 s. Negative disables the
	// ticker so tests can post ticks themselves.
	Tick time.Duration
	// EventHistory is how many events the feed keeps for subscribers that
	// reconnect (events.go); default DefaultEventHistory.
	EventHistory int
	Now          func() time.Time
	// Logger receives the engine's structured log (logging.go); nil: Logf
	// as one line per record at info and above, else slog's default.
	Logger *slog.Logger
	Logf   func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.MaxPeersPerTorrent <= 0 {
		c.MaxPeersPerTorrent = 80
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 5000
	}
	if c.DiskWorkers <= 0 {
		c.DiskWorkers = 8
	}
	if c.HashWorkers <= 0 {
		c.HashWorkers = runtime.NumCPU()
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 64 << 20
	}
	if c.MaxOpenFiles <= 0 {
		c.MaxOpenFiles = 512
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ListenStatus is what the engine reads of the network layer's peer
// listener (netio.Server implements it). ListenError must be safe for
// concurrent use and cheap: every API snapshot calls it.
type ListenStatus interface {
	ListenError() string // "" while it accepts
}

// Client holds every session and the pools they share. Its methods are safe
// for concurrent use; none of them blocks on a transfer.
type Client struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	sched  *scheduler
	// Lanes for work off the session threads (jobs.go).
	disk      *storage.Pool
	hash      *storage.Pool
	wait      *storage.Pool
	net       *storage.Pool
	announces *storage.Pool
	web       webLane // web seed fetches (webseed.go)
	cache     *storage.Cache
	files     *storage.FileCache
	trk       *tracker.Client

	// sessions maps infohash to *Session. Lookups (every inbound handshake,
	// every API read) take no lock; regMu only orders adds and removes, so
	// that the check for a duplicate and the store are one step.
	sessions sync.Map
	regMu    sync.Mutex
	// obfuscated maps ObfuscatedHash(infohash) to *Session, stored and
	// deleted with sessions under regMu (obfuscated.go).
	obfuscated sync.Map

	conns    atomic.Int64
	bufs     *bufPool
	down, up globalBucket
	local    map[netip.Addr]bool
	bans     *banList
	version  atomic.Uint64 // change version, see changes.go
	removed  removals
	// uplink sizes automatic upload slots; ticker only. sendShare is each
	// unchoked peer's share of sendBudget, set by the ticker.
	uplink    *choke.Uplink
	sendShare atomic.Int64
	lastLoad  atomic.Pointer[roundResult]
	feed      *feed // events for the API's change stream (events.go)
	stopping  sync.WaitGroup
	tickDone  chan struct{}

	// Global settings (global.go): read lock-free, changed under globalMu.
	global   atomic.Pointer[Global]
	globalMu sync.Mutex
	// queue is the queue order; queueMu orders its saves; queueKick asks
	// the ticker for a queue pass (queue.go).
	queue     queueOrder
	queueMu   sync.Mutex
	queueKick chan struct{}
	// totals keeps removed torrents' byte totals, hashFailures counts
	// pieces that failed their hash (stats.go).
	totals       transferSums
	hashFailures atomic.Int64
}

// New starts a client with no torrents.
func New(cfg Config) *Client {
	cfg.defaults()
	c := &Client{cfg: cfg, log: cfg.logger(), tickDone: make(chan struct{}), queueKick: make(chan struct{}, 1)}
	c.global.Store(&Global{LimitAction: resume.LimitStop})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.sched = newScheduler(runtime.GOMAXPROCS(0))
	c.disk = storage.NewPool(cfg.DiskWorkers, 4096)
	c.hash = storage.NewPool(cfg.HashWorkers, 256)
	c.wait = storage.NewPool(waitWorkers, 1024)
	c.net = storage.NewPool(netWorkers, 1024)
	c.announces = storage.NewPool(announceWorkers, 1024)
	c.web = newWebLane()
	c.cache = storage.NewCache(cfg.CacheBytes)
	c.files = storage.NewFileCache(cfg.MaxOpenFiles)
	c.bufs = newBufPool(pieceBufBudget)
	c.trk = tracker.NewClient(cfg.Tracker)
	c.local = localAddrs()
	c.bans = newBanList()
	c.uplink = choke.NewUplink()
	c.feed = newFeed(cfg.EventHistory, cfg.Now)
	if cfg.Tick > 0 {
		go c.tickLoop()
	} else {
		close(c.tickDone)
	}
	return c
}

// PeerID is our BitTorrent peer id.
func (c *Client) PeerID() [20]byte { return c.cfg.PeerID }

// PeerSlots reports the connections attached to sessions and the limit on
// them (MaxPeers); the network layer counts its handshaking connections
// against the difference. Safe for concurrent use.
func (c *Client) PeerSlots() (used, limit int) { return int(c.conns.Load()), c.cfg.MaxPeers }

// ListenError is the peer listener's trouble, or "", read from
// Config.Listener. Safe for concurrent use.
func (c *Client) ListenError() string {
	if l := c.cfg.Listener; l != nil {
		return l.ListenError()
	}
	return ""
}

// Session returns the session for ih, or nil. Lock-free.
func (c *Client) Session(ih metainfo.Hash) *Session {
	if v, ok := c.sessions.Load(ih); ok {
		return v.(*Session)
	}
	return nil
}

// Sessions lists every session, in no particular order. Lock-free.
func (c *Client) Sessions() []*Session {
	var out []*Session
	c.sessions.Range(func(_, v any) bool {
		out = append(out, v.(*Session))
		return true
	})
	return out
}

// AddOptions are what a torrent is added with: its own settings, and for
// one coming back from the persister, what its record kept.
type AddOptions struct {
	Settings                  // folder, stopped, limits, order: the value the record and the API carry too
	Have       *bitset.BitSet // trusted verified pieces (resume); nil = check the disk
	Added      time.Time      // when first added (resume); zero = now
	Restored   bool           // coming back from the persister: do not store it again
	Downloaded int64          // totals from earlier runs (resume)
	Uploaded   int64
	// SeedingSeconds is the time spent seeding in earlier runs (resume).
	SeedingSeconds int64
	// Trackers, when set, replace the metainfo's announce list (the
	// operator added or removed trackers; resume).
	Trackers [][]string
	// Error, when set, brings the torrent back in state error with this
	// message (its resume record was lost); starting it clears it.
	Error error
	// MoveTo is a move the record says is unfinished (start-up could not
	// complete it): starting the torrent finishes it first.
	MoveTo string
}

// settings is the torrent's settings as given, negative limits as none.
func (o AddOptions) settings() Settings {
	st := o.Settings
	st.MaxDown, st.MaxUp = max(st.MaxDown, 0), max(st.MaxUp, 0)
	return st
}

// Add adds a torrent and, unless opt.Stopped, starts it. Adding one that is
// already present fails with ErrExists and leaves it untouched. With a
// persister, the torrent and its first resume record are durable before
// Add returns; if they cannot be stored, Add fails and nothing is kept.
func (c *Client) Add(mi *metainfo.MetaInfo, opt AddOptions) (*Session, error) {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if s := c.Session(mi.InfoHash); s != nil {
		return s, fmt.Errorf("%w: %s", ErrExists, mi.InfoHash)
	}
	s := newSession(c, mi, opt.Dir, c.cfg.Now())
	s.configure(opt)
	if p := c.cfg.Persister; p != nil && !opt.Restored {
		r := s.resumeRecord()
		if err := p.AddTorrent(mi, &r); err != nil {
			return nil, err
		}
	}
	c.register(s, opt)
	return s, nil
}

// configure applies opt to a session no other goroutine knows yet.
func (s *Session) configure(opt AddOptions) {
	if !opt.Added.IsZero() {
		s.added = opt.Added
	}
	s.settings = opt.settings()
	s.persist.base.downloaded, s.persist.base.uploaded = opt.Downloaded, opt.Uploaded
	s.seedTime.base = time.Duration(opt.SeedingSeconds) * time.Second
	if opt.Trackers != nil {
		s.setTrackers(opt.Trackers)
	}
	// A restored torrent's record is already on disk, and a new one's was
	// written by Add: rewriting 10,000 of them at every start-up would
	// cost 10,000 fsyncs for nothing.
	s.persist.restored = opt.Restored
	s.limits.down.set(s.settings.MaxDown)
	s.limits.up.set(s.settings.MaxUp)
	s.dl.stopHave = opt.Have
	s.mv.pending = opt.MoveTo
	s.applyPriorities()
	if opt.Error != nil {
		s.life.err = opt.Error
		s.to(onFail)
	}
	s.dirty = true
	s.publish()
}

// register publishes a configured session in the table and starts it
// unless opt.Stopped (or it came back in error). Caller holds regMu.
func (c *Client) register(s *Session, opt AddOptions) {
	c.logAdded(s, opt)
	s.emitAdded(opt.Restored)
	c.sessions.Store(s.ih, s)
	c.obfuscated.Store(ObfuscatedHash(s.ih), s)
	c.queue.add(s.ih)
	if !opt.Stopped && opt.Error == nil {
		// Under queue limits the start takes a place in the queue.
		s.post(startEvent{have: opt.Have})
	}
}

// Start starts a stopped torrent.
func (c *Client) Start(ih metainfo.Hash) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	s.post(startEvent{})
	return nil
}

// Stop stops a torrent and waits until its peers are closed.
func (c *Client) Stop(ih metainfo.Hash) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	done := make(chan struct{})
	s.post(stopEvent{done: done, user: true})
	<-done
	return nil
}

// Remove stops a torrent, forgets it and, if deleteData, deletes its files.
func (c *Client) Remove(ih metainfo.Hash, deleteData bool) error {
	c.regMu.Lock()
	s := c.Session(ih)
	if s == nil {
		c.regMu.Unlock()
		return ErrNotFound
	}
	c.totals.removing(s, func() { c.sessions.Delete(ih) })
	c.obfuscated.Delete(ObfuscatedHash(ih))
	c.queue.remove(ih)
	c.removed.add(c.version.Add(1), ih)
	s.removed.Store(true)
	c.regMu.Unlock()
	done := make(chan error, 1)
	s.post(removeEvent{deleteData: deleteData, done: done})
	err := <-done
	c.logRemoved(s, deleteData, err)
	return err
}

// SetRates sets a torrent's limits in bytes/s (0 = unlimited; negative
// leaves that direction unchanged).
func (c *Client) SetRates(ih metainfo.Hash, down, up int64) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	s.post(evFunc(func(s *Session) {
		if down >= 0 {
			s.settings.MaxDown = down
			s.limits.down.set(down)
		}
		if up >= 0 {
			s.settings.MaxUp = up
			s.limits.up.set(up)
		}
		s.dirty, s.persist.dirty = true, true
		s.publish()
		s.saveResume(true)
	}))
	return nil
}

// SetGlobalRates sets the limits over all torrents, bytes/s, 0 = unlimited.
func (c *Client) SetGlobalRates(down, up int64) {
	c.down.set(down)
	c.up.set(up)
}

// Close stops every torrent (announcing stopped, bounded in time) and the
// pools. The network layer must be stopped first or concurrently.
func (c *Client) Close() {
	for _, s := range c.Sessions() {
		done := make(chan struct{})
		s.post(stopEvent{done: done})
		<-done
	}
	waitTimeout(&c.stopping, 4*time.Second)
	c.cancel()
	<-c.tickDone
	c.announces.Close()
	c.trk.Close()
	// Lanes before the scheduler, waiting lanes before the ones they wait
	// on: every job taken runs and posts its outcome.
	c.net.Close()
	c.web.close()
	c.wait.Close()
	c.sched.close()
	c.hash.Close()
	c.disk.Close()
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (c *Client) tickLoop() {
	defer close(c.tickDone)
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	lt := time.NewTicker(min(limitRefillEvery, c.cfg.Tick))
	defer lt.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-lt.C:
			c.limitRefill(c.cfg.Now())
		case <-c.queueKick:
			c.queuePass()
		case <-t.C:
			now := c.cfg.Now()
			c.down.refill(now, true)
			c.up.refill(now, true)
			c.bufs.trim(now, pieceBufIdle)
			ns := now.UnixNano()
			auto := c.autoSlots()
			var slotted []*Session
			c.sessions.Range(func(_, v any) bool {
				s := v.(*Session)
				if auto && (s.slots.interested.Load() > 0 || s.slots.budget.Load() != 0) {
					slotted = append(slotted, s)
				}
				if w := s.wakeAt.Load(); w == 0 || w <= ns {
					s.post(tickEvent{now})
				}
				return true
			})
			if queuing(c.Global()) {
				c.queuePass()
			}
			if auto {
				// The ticks just posted read these budgets: sessions
				// take a moment to start, and reports are a tick old
				// anyway.
				c.slotsRound(slotted)
			}
		}
	}
}

func (c *Client) isLocalAddr(a netip.Addr) bool {
	return a.IsLoopback() || a.IsUnspecified() || c.local[a]
}

func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr()] = true
		}
	}
	return out
}
