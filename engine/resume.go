package engine

import (
	"time"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// Resume is a torrent's resume record (see package resume); Settings its
// own settings.
type (
	Resume   = resume.Record
	Settings = resume.Settings
)

// Persister keeps torrents across restarts. Safe for concurrent use.
type Persister interface {
	// AddTorrent stores the metainfo and, when r is set, the first resume
	// record, durably (synced) or not at all. Client.Add calls it before
	// the torrent exists, so it may block briefly on disk. r is nil when a
	// magnet's metadata arrives for a torrent already on record.
	AddTorrent(mi *metainfo.MetaInfo, r *Resume) error
	// Save queues a newer record; it must not block (sessions call it on
	// their own thread).
	Save(r Resume)
	// Remove forgets a torrent.
	Remove(ih metainfo.Hash)
}

// persistence decides when the session hands its persister a new record,
// and holds the totals of earlier runs. Session-owned.
type persistence struct {
	dirty    bool      // something in the record changed since it was saved
	last     time.Time // when a record was last handed over
	restored bool      // came back from the persister; its record is current
	base     struct{ downloaded, uploaded int64 }
}

// due reports whether a record is to be saved now, and if so counts it
// saved: when something changed, at most every resumeEvery unless forced.
func (p *persistence) due(now time.Time, force bool) bool {
	if !p.dirty && !force || !force && now.Sub(p.last) < resumeEvery {
		return false
	}
	p.dirty = false
	p.last = now
	return true
}

// resumeEvery bounds how much progress a crash can lose.
const resumeEvery = 3 * time.Second

// saveResume hands a resume record to the persister when something worth
// keeping changed, at most every resumeEvery unless forced.
func (s *Session) saveResume(force bool) {
	p := s.c.cfg.Persister
	if p == nil || s.removed.Load() || s.life.state == StateMoving || !s.persist.due(s.now, force) {
		return
	}
	p.Save(s.resumeRecord())
}

// resumeRecord is what the session would come back from now.
func (s *Session) resumeRecord() Resume {
	have := s.have()
	r := Resume{
		InfoHash: s.ih, Settings: s.settings,
		Have: bitfieldBytes(have, s.numPieces()), NumPieces: s.numPieces(),
		Downloaded: s.persist.base.downloaded + s.stats.downloaded, Uploaded: s.persist.base.uploaded + s.stats.uploaded,
		Added: s.added, MetaInfo: s.mi, Root: s.c.cfg.DownloadRoot,
		SeedingSeconds: int64(s.seedTime.total(s.now) / time.Second), Trackers: s.disc.custom, MoveTo: s.mv.pending,
	}
	if s.mi == nil && s.mag.link != nil {
		r.Magnet = s.mag.link.String()
	}
	return r
}
