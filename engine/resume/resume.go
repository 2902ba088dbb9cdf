// Package resume holds the plain values a torrent is described by outside
// its session: its Settings, which adding, the resume record, a restore and
// the API all carry as one value, and the Record a session hands its
// persister. It imports nothing of the engine, so the persister
// (engine/state) and the engine both depend on it rather than on each
// other. Values only: safe to copy and to read from any goroutine.
package resume

import (
	"time"

	"gotorrentserver/metainfo"
)

// Settings are one torrent's own settings: what a user chose for it, kept
// across restarts. A new setting is added here and nowhere else travels it
// from the API to the session and into the record.
type Settings struct {
	Dir        string // download folder; the torrent's name is created below it
	Stopped    bool   // stopped by the user: stays stopped across restarts
	MaxDown    int64  // bytes/s, 0 = unlimited
	MaxUp      int64  // bytes/s, 0 = unlimited
	Sequential bool   // download pieces in order
	Label      string // the operator's label; "" = none
	// RatioLimit stops (or removes, per the global limit action) the
	// torrent once uploaded/downloaded reaches it. 0 follows the global
	// setting and a negative value means none, so that the zero value
	// (an old record, a plain add) follows the global setting; the API
	// speaks -1 for "global" and 0 for "none" and maps at its edge.
	RatioLimit float64
	// SeedTimeLimit is the same for minutes spent seeding.
	SeedTimeLimit int64
	// Priorities holds one byte per file of the API's files list (pad
	// files left out), PrioritySkip, PriorityNormal or PriorityHigh; ""
	// or a missing byte means normal. A string, so Settings stays a
	// comparable value that snapshots can share.
	Priorities string
}

// File priorities, as bytes of Settings.Priorities and as the API numbers
// them.
const (
	PrioritySkip   = 0
	PriorityNormal = 1
	PriorityHigh   = 2
)

// FilePriority is file i's priority (i indexes the API's files list).
func (st Settings) FilePriority(i int) int {
	if i < 0 || i >= len(st.Priorities) {
		return PriorityNormal
	}
	return int(st.Priorities[i])
}

// WithFilePriority returns the priorities with file i (of n files) set to p.
func (st Settings) WithFilePriority(i, n, p int) string {
	b := []byte(st.Priorities)
	for len(b) < n {
		b = append(b, PriorityNormal)
	}
	b[i] = byte(p)
	return string(b)
}

// Record is what a torrent needs to come back after a restart without
// rehashing: its settings, its verified pieces and its totals.
type Record struct {
	InfoHash metainfo.Hash
	Settings
	Have       []byte // bitfield, BEP 3 layout; only verified, written pieces
	NumPieces  int
	Downloaded int64 // totals over the torrent's life
	Uploaded   int64
	// SeedingSeconds is the time spent seeding over the torrent's life.
	SeedingSeconds int64
	Added          time.Time
	Magnet         string // set while a magnet's metadata is still unknown
	// Trackers, when set, replace the metainfo's announce list: the
	// operator added or removed trackers.
	Trackers [][]string
	// MoveTo, when set, is the folder the torrent's data is being moved
	// to from Settings.Dir: written (synced) before the first file moves,
	// cleared with Dir set to it once they all did. A record still holding
	// it after a crash says the move is to be finished before the torrent
	// starts.
	MoveTo string
	// MetaInfo and Root let the persister stat the torrent's files beneath
	// the download root when it writes (disk I/O, so never on the
	// session); MetaInfo is nil while a magnet's metadata is unknown.
	// Both are immutable.
	MetaInfo *metainfo.MetaInfo `json:"-"`
	Root     string             `json:"-"`
}

// Global is the daemon's settings over all torrents, changed at run time
// through the API and kept in the state folder. Flags give its values on a
// first start; a saved value wins afterwards unless a flag names it again.
type Global struct {
	MaxDown int64 // bytes/s over all torrents, 0 = unlimited
	MaxUp   int64
	// MaxActiveDownloads and MaxActiveSeeds bound the torrents
	// transferring at once (0 = no limit); the others wait in state
	// queued, first in queue order first.
	MaxActiveDownloads int
	MaxActiveSeeds     int
	RatioLimit         float64 // stop seeding at this ratio; 0 = none
	SeedTimeLimit      int64   // minutes of seeding; 0 = none
	LimitAction        string  // LimitStop or LimitRemove
	// DefaultPath is where adds without a folder go, relative to the
	// download root ("" = the root itself).
	DefaultPath string
}

// What a torrent that reaches its ratio or seed-time limit does.
const (
	LimitStop   = "stop"
	LimitRemove = "remove"
)
