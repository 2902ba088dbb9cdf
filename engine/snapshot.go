package engine

import (
	"net/netip"
	"strings"
	"time"

	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// Snapshot is an immutable copy of a session's state, published after
// changes and every tick while peers are connected. Readers (the API) never
// touch the session itself, so a slow reader cannot stall a transfer.
type Snapshot struct {
	Name       string
	InfoHash   metainfo.Hash
	State      State
	Error      string
	Bitfield   []byte // BEP 3 layout, high bit first
	NumPieces  int
	Have       int
	Added      time.Time
	Started    time.Time // zero until first started
	Downloaded int64     // payload bytes since the session started
	Uploaded   int64
	Wasted     int64
	DownRate   int64 // bytes/s over the last 5 s
	UpRate     int64
	Size       int64
	Left       int64 // bytes of wanted pieces not verified yet
	// Wanted is the bytes of the wanted pieces: Size unless files are
	// skipped (a piece shared with a wanted file is wanted).
	Wanted int64
	// TotalDownloaded and TotalUploaded are payload bytes over the
	// torrent's life, earlier runs included.
	TotalDownloaded, TotalUploaded int64
	// SeedingSeconds is the time spent seeding over the torrent's life,
	// as of At; while seeding, add the time since At.
	SeedingSeconds int64
	// LimitReached says why the ratio or seed-time limit stopped the
	// torrent ("" unless it did, until it starts again).
	LimitReached string
	// Settings are the torrent's own settings (folder, limits, order), the
	// same value adding, the resume record and a restore carry.
	Settings
	Rechecks int       // full rechecks run since the session was created
	At       time.Time // the session's clock when this snapshot was taken
	// MetadataHave of MetadataPieces BEP 9 pieces fetched, for a magnet.
	MetadataHave, MetadataPieces int
	Trackers                     []TrackerSnapshot
	WebSeeds                     []WebSeedSnapshot // BEP 19 servers, in url-list order
	Peers                        []PeerSnapshot
	Files                        []FileSnapshot
	// Version is the client-wide change version at which this torrent last
	// changed; ChangedSince says what changed.
	Version   uint64
	changedAt changeVersions
}

// TrackerSnapshot is one tracker of the torrent's announce list as last
// heard. The engine's own type, so readers need not know engine/tracker.
type TrackerSnapshot struct {
	URL          string
	Tier         int
	Status       string // "pending", "working" or "error"
	Seeders      int    // -1 unknown
	Leechers     int    // -1 unknown
	Peers        int    // peers in the last successful reply
	LastAnnounce time.Time
	LastError    string
	NextAnnounce time.Time // set on the tracker announced to next
	Interval     time.Duration
}

func trackerSnapshots(st []tracker.TrackerStatus) []TrackerSnapshot {
	out := make([]TrackerSnapshot, len(st))
	for i, t := range st {
		out[i] = TrackerSnapshot(t)
	}
	return out
}

// Progress is the verified fraction of the wanted bytes, 0..1 (1 when
// nothing is wanted).
func (s *Snapshot) Progress() float64 {
	w := s.Wanted
	if w <= 0 {
		w = s.Size
	}
	if w == 0 {
		return 0
	}
	return float64(w-s.Left) / float64(w)
}

// PeerSnapshot is one peer, connected or known.
type PeerSnapshot struct {
	PeerID     [20]byte
	Addr       netip.AddrPort
	Client     string
	Bitfield   []byte
	DownRate   int64
	UpRate     int64
	Downloaded int64
	Uploaded   int64
	Connected  bool
	Relevance  float64 // share of the pieces we lack that the peer has
	Outbound   bool
	NumPieces  int // bits in Bitfield (0 before the peer's set is known)
	isSeed     bool
	// Have counts the pieces the peer has (of NumPieces).
	Have int
	// Encrypted: the link is RC4-encrypted (MSE); UTP: it runs over uTP,
	// not TCP. Known when the network layer's connection says (ConnKind).
	Encrypted bool
	UTP       bool
}

// Seed reports whether the peer has every piece.
func (p *PeerSnapshot) Seed() bool { return p.isSeed }

// FileSnapshot is one file and how much of it is verified.
type FileSnapshot struct {
	Path     string
	Length   int64
	Progress float64
}

// rateIdle: a shown rate is 0 once nothing moved for this long. With the
// session ticking every second while a rate is shown, a stopped transfer
// reads 0 within two seconds.
const rateIdle = time.Second

// Snapshot returns the latest published snapshot. Safe for concurrent use.
func (s *Session) Snapshot() *Snapshot { return s.snap.Load() }

// publish builds a new snapshot when something changed or peers are active.
func (s *Session) publish() {
	old := s.snap.Load()
	if !s.dirty && len(s.swarm.peers) == 0 && old != nil && old.DownRate == 0 && old.UpRate == 0 {
		s.flushProgress(old, s.now)
		return
	}
	s.dirty = false
	have := s.have()
	n := s.numPieces()
	state := s.life.state
	if s.queued && state == StateStopped {
		state = StateQueued
	}
	totalDown, totalUp := s.totals()
	sn := &Snapshot{
		Name: s.name(), InfoHash: s.ih, State: state, NumPieces: n,
		TotalDownloaded: totalDown, TotalUploaded: totalUp, LimitReached: s.limitReached,
		SeedingSeconds: int64(s.seedTime.total(s.now) / time.Second),
		Bitfield:       bitfieldBytes(have, n), Have: int(have.Count()),
		Added: s.added, Started: s.life.started, Size: s.size(), Left: s.left(), Wanted: s.dl.wanted, At: s.now,
		Downloaded: s.stats.downloaded, Uploaded: s.stats.uploaded, Wasted: s.stats.wasted,
		DownRate: s.stats.down.Shown(s.now, rateIdle), UpRate: s.stats.up.Shown(s.now, rateIdle),
		Settings: s.settings, Rechecks: s.life.rechecks,
		Trackers: trackerSnapshots(s.disc.trackers.Statuses()),
		WebSeeds: s.webSnapshots(),
	}
	if s.life.err != nil {
		sn.Error = s.life.err.Error()
	}
	for _, p := range s.swarm.peers {
		sn.Peers = append(sn.Peers, s.peerSnapshot(p))
	}
	for _, k := range s.book.known {
		if k.connected {
			continue
		}
		ps := PeerSnapshot{Addr: k.addr}
		if k.lastPeer != nil {
			ps = *k.lastPeer
			ps.DownRate, ps.UpRate = 0, 0
		}
		sn.Peers = append(sn.Peers, ps)
	}
	if s.mi != nil {
		sn.Files = s.fileProgress(have)
	}
	if s.mag.fetch != nil {
		sn.MetadataHave, sn.MetadataPieces = s.mag.fetch.Progress()
	}
	s.record(old, sn)
	s.snap.Store(sn)
}

// record stamps sn with the change version of each kind of change since
// old: a new client-wide version when anything differs. The same
// comparison feeds the event feed (events.go).
func (s *Session) record(old, sn *Snapshot) {
	if old != nil {
		sn.Version, sn.changedAt = old.Version, old.changedAt
	}
	c := diffSnapshots(old, sn)
	s.emit(old, sn, c)
	if c == 0 {
		return
	}
	v := s.c.version.Add(1)
	sn.Version = v
	for k := range sn.changedAt {
		if c&(1<<k) != 0 {
			sn.changedAt[k] = v
		}
	}
}

// name is the torrent's name, or for a magnet without metadata its dn (or
// the infohash when the link had none).
func (s *Session) name() string {
	switch {
	case s.mi != nil:
		return s.mi.Name
	case s.mag.link != nil && s.mag.link.Name != "":
		return s.mag.link.Name
	}
	return s.ih.String()
}

func (s *Session) size() int64 {
	if s.mi == nil {
		return 0
	}
	return s.mi.TotalLength
}

func (s *Session) peerSnapshot(p *peer) PeerSnapshot {
	n := s.numPieces()
	ps := PeerSnapshot{
		PeerID: p.peerID, Addr: p.addr, Client: p.client,
		DownRate: p.down.Shown(s.now, rateIdle), UpRate: p.up.Shown(s.now, rateIdle),
		Downloaded: p.downloaded, Uploaded: p.uploaded, Connected: !p.closed,
		Outbound: p.outbound, NumPieces: n, Encrypted: p.encrypted, UTP: p.utp,
	}
	if p.has == nil {
		return ps
	}
	ps.Bitfield = bitfieldBytes(p.has, n)
	ps.Have = int(p.has.Count())
	ps.isSeed = p.hasAll || (n > 0 && ps.Have == n)
	if s.dl.pick != nil && s.dl.pick.Missing() > 0 {
		lack := s.dl.pick.Have()
		lack.FlipRange(0, uint(n))
		ps.Relevance = float64(lack.IntersectionCardinality(p.has)) / float64(s.dl.pick.Missing())
	}
	return ps
}

func (s *Session) fileProgress(have interface{ Test(uint) bool }) []FileSnapshot {
	out := make([]FileSnapshot, 0, len(s.mi.Files))
	for i, f := range s.mi.Files {
		if f.Pad {
			continue
		}
		fs := FileSnapshot{Path: strings.Join(f.Path, "/"), Length: f.Length}
		if f.Length == 0 {
			fs.Progress = 1
		} else {
			first, last := s.mi.FilePieces(i)
			var got int64
			for pc := first; pc <= last; pc++ {
				if have.Test(uint(pc)) {
					start := max(int64(pc)*s.mi.PieceLength, f.Offset)
					end := min(int64(pc)*s.mi.PieceLength+s.mi.PieceSize(pc), f.Offset+f.Length)
					got += end - start
				}
			}
			fs.Progress = float64(got) / float64(f.Length)
		}
		out = append(out, fs)
	}
	return out
}
