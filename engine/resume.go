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

// resumeEvery bounds how much progress a crash can lose.
const resumeEvery = 3 * time.Second

// saveResume hands a resume record to the persister when something worth
// keeping changed, at most every resumeEvery unless forced.
func (s *Session) saveResume(force bool) {
	p := s.c.cfg.Persister
	if p == nil || s.removed.Load() || (!s.resumeDirty && !force) {
		return
	}
	if !force && s.now.Sub(s.lastResume) < resumeEvery {
		return
	}
	s.resumeDirty = false
	s.lastResume = s.now
	p.Save(s.resumeRecord())
}

// resumeRecord is what the session would come back from now.
func (s *Session) resumeRecord() Resume {
	have := s.have()
	r := Resume{
		InfoHash: s.ih, Settings: s.settings,
		Have: bitfieldBytes(have, s.numPieces()), NumPieces: s.numPieces(),
		Downloaded: s.base.downloaded + s.stats.downloaded, Uploaded: s.base.uploaded + s.stats.uploaded,
		Added: s.added, MetaInfo: s.mi, Root: s.c.cfg.DownloadRoot,
	}
	if s.mi == nil && s.magnet != nil {
		r.Magnet = s.magnet.String()
	}
	return r
}
