package engine

import (
	"errors"
	"fmt"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// File priorities: Settings.Priorities holds one byte per file of the API's
// files list (pad files left out). A piece's priority is the highest of the
// files it touches (pad files ignored; a piece of pad files alone is
// normal), so a piece shared by a skipped and a wanted file is wanted, and
// storage keeps the skipped file's bytes of it in the part file. A torrent
// whose wanted pieces are all verified is complete: it seeds what it has.

var (
	// ErrBadFile: no file with that index in the torrent's files list.
	ErrBadFile = errors.New("engine: no such file")
	// ErrBadPriority: a file priority other than 0 (skip), 1 (normal) or
	// 2 (high).
	ErrBadPriority = errors.New("engine: file priority must be 0 (skip), 1 (normal) or 2 (high)")
)

// SetFilePriority sets the priority of file (its index in the torrent's
// files list, pad files left out) to prio: resume.PrioritySkip,
// PriorityNormal or PriorityHigh. It fails with ErrNotFound, ErrNoMetadata
// for a magnet whose files are not known yet, ErrBadFile or ErrBadPriority.
// The change is persisted and shows in the snapshot's Settings. Safe for
// concurrent use.
func (c *Client) SetFilePriority(ih metainfo.Hash, file, prio int) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	if prio < resume.PrioritySkip || prio > resume.PriorityHigh {
		return ErrBadPriority
	}
	done := make(chan error, 1)
	s.post(evFunc(func(s *Session) { done <- s.setFilePriority(file, prio) }))
	return <-done
}

// apiFiles is the number of files of the API's list: mi's without pads.
func apiFiles(mi *metainfo.MetaInfo) int {
	n := 0
	for _, f := range mi.Files {
		if !f.Pad {
			n++
		}
	}
	return n
}

func (s *Session) setFilePriority(file, prio int) error {
	if s.mi == nil {
		return ErrNoMetadata
	}
	n := apiFiles(s.mi)
	if file < 0 || file >= n {
		return fmt.Errorf("%w: file %d of %d", ErrBadFile, file, n)
	}
	if s.settings.FilePriority(file) == prio {
		return nil
	}
	s.settings.Priorities = s.settings.WithFilePriority(file, n, prio)
	s.applyPriorities()
	s.dirty, s.persist.dirty = true, true
	s.persist.restored = false
	s.publish()
	s.saveResume(true)
	return nil
}

// filePriorities maps the settings' priorities onto mi.Files (pads -1).
func filePriorities(mi *metainfo.MetaInfo, st Settings) []int {
	out := make([]int, len(mi.Files))
	k := 0
	for i, f := range mi.Files {
		if f.Pad {
			out[i] = -1
			continue
		}
		out[i] = st.FilePriority(k)
		k++
	}
	return out
}

// piecePriorities is each piece's priority for the settings' file
// priorities, and the mask of skipped files (by index in mi.Files); both
// nil when every file is normal.
func piecePriorities(mi *metainfo.MetaInfo, st Settings) ([]uint8, []bool) {
	fp := filePriorities(mi, st)
	var skip []bool
	plain := true
	for i, p := range fp {
		if p == resume.PrioritySkip {
			if skip == nil {
				skip = make([]bool, len(fp))
			}
			skip[i] = true
		}
		if p >= 0 && p != resume.PriorityNormal {
			plain = false
		}
	}
	if plain {
		return nil, nil
	}
	prio := make([]uint8, mi.NumPieces())
	for i := range prio {
		best := -1
		for _, sp := range mi.PieceSpans(i) {
			if !sp.Pad {
				best = max(best, fp[sp.File])
			}
		}
		if best < 0 {
			best = resume.PriorityNormal
		}
		prio[i] = uint8(best)
	}
	return prio, skip
}

// applyPriorities brings the transfer, the picker and the storage in line
// with the settings' file priorities.
func (s *Session) applyPriorities() {
	if s.mi == nil {
		return
	}
	old := s.dl.prio
	s.dl.prio, s.dl.skip = piecePriorities(s.mi, s.settings)
	s.dl.wanted = s.mi.TotalLength
	if s.dl.prio != nil {
		s.dl.wanted = 0
		for i, p := range s.dl.prio {
			if p != picker.PrioritySkip {
				s.dl.wanted += s.mi.PieceSize(i)
			}
		}
	}
	if s.store != nil {
		s.store.SetSkipped(s.dl.skip)
		s.settleStore()
	}
	if s.dl.pick == nil {
		return
	}
	for i := range s.mi.NumPieces() {
		was, now := piecePrio(old, i), piecePrio(s.dl.prio, i)
		if was == now {
			continue
		}
		_ = s.dl.pick.SetPiecePriority(i, now)
		if now == picker.PrioritySkip {
			s.dropUnwanted(i)
		}
	}
	s.wantedChanged()
}

func piecePrio(prio []uint8, i int) int {
	if prio == nil {
		return picker.PriorityNormal
	}
	return int(prio[i])
}

// pickerPriorities gives a new picker the pieces' priorities.
func (s *Session) pickerPriorities() {
	for i, p := range s.dl.prio {
		if p != picker.PriorityNormal {
			_ = s.dl.pick.SetPiecePriority(i, int(p))
		}
	}
}

// dropUnwanted forgets a piece being assembled that is no longer wanted:
// its requests are cancelled and its buffer recycled. One already out for
// hashing is written if it passes (or refused by storage, ErrSkipped).
func (s *Session) dropUnwanted(piece int) {
	pb := s.dl.pieces[piece]
	if pb == nil {
		return
	}
	delete(s.dl.pieces, piece)
	s.failPiece(piece)
	s.recycle(pb.data)
}

// wantedChanged moves between downloading and seeding after the wanted
// set changed, and tells peers whether we are interested now.
func (s *Session) wantedChanged() {
	switch {
	case s.life.state == StateSeeding && !s.complete():
		s.to(onWant)
		s.connectPeers()
	case s.life.state == StateDownloading && s.complete():
		s.completed()
		return
	}
	for _, p := range s.swarm.peers {
		s.updateInterest(p)
	}
}

// completed is the move to seeding once every wanted piece is verified.
func (s *Session) completed() {
	s.to(onComplete)
	s.logCompleted()
	s.ensureEmptyFiles()
	s.announce(tracker.Completed)
	seed := s.seed()
	for _, p := range s.swarm.peers {
		s.setInterest(p, false)
		if seed && p.hasAll {
			s.dropPeer(p, fmt.Errorf("engine: both sides are seeds"))
		}
	}
	s.saveResume(true)
	s.publish()
	s.notifyComplete()
}

// seed reports whether every piece is verified, skipped ones included:
// only then do we tell peers we have all, and drop other seeds.
func (s *Session) seed() bool {
	return s.dl.pick != nil && s.dl.pick.Missing() == 0 && s.dl.pick.HaveAll()
}

// settleStore moves files wanted again out of the part file, as a disk
// job; a failure is a disk error like any other.
func (s *Session) settleStore() {
	st, gen := s.store, s.life.gen
	s.submit(s.c.disk, func() event {
		err := st.Settle()
		if err == nil {
			return nil
		}
		return evFunc(func(s *Session) {
			if gen == s.life.gen && (s.life.state == StateSeeding || s.life.state == StateDownloading) {
				s.setError(fmt.Errorf("engine: %w", err))
			}
		})
	})
}
