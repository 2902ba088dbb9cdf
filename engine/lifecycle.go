package engine

import (
	"errors"
	"fmt"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// startEvent opens storage, rechecks whatever data already exists and then
// downloads or seeds. have, when set, is a trusted resume bitfield that
// skips the recheck.
type startEvent struct{ have *bitset.BitSet }

func (e startEvent) handle(s *Session) {
	if s.life.state == StateStopped && queuing(s.c.Global()) {
		// Under queue limits a start takes a place in the queue; the
		// queue pass starts it when its turn comes.
		s.wantRun()
		s.queued = true
		s.dirty = true
		s.publish()
		s.c.kickQueue()
		return
	}
	s.start(e.have)
}

// wantRun records that the user wants the torrent running.
func (s *Session) wantRun() {
	if s.settings.Stopped {
		s.settings.Stopped = false
		s.persist.restored = false
		s.persist.dirty = true
		s.saveResume(true)
	}
}

// start begins a run from stopped or error; have is as in startEvent.
func (s *Session) start(have *bitset.BitSet) {
	if s.life.state == StateMoving {
		s.settings.Stopped = false
		s.persist.dirty = true
		s.mv.startAfter = true
		return
	}
	if s.life.state != StateStopped && s.life.state != StateError {
		return
	}
	if s.settings.Stopped {
		s.persist.restored = false // a user's start changes the record
	}
	s.settings.Stopped = false
	s.persist.dirty = !s.persist.restored
	s.life.err = nil
	s.limitReached = ""
	if have == nil {
		have = s.dl.stopHave
	}
	if s.mi == nil {
		s.startMetadata()
		return
	}
	if s.finishPendingMove() {
		return
	}
	if !s.openStore() {
		return
	}
	s.life.started = s.now
	if have != nil {
		s.begin(have)
		return
	}
	s.findData()
}

// findData stats the torrent's files off the session thread (beneath the
// download root, never through a symlink out of it): a fresh download
// skips the recheck entirely. The torrent shows checking meanwhile.
func (s *Session) findData() {
	s.to(onFindData)
	s.life.gen++
	gen, st := s.life.gen, s.store
	s.dirty = true
	s.publish()
	s.submit(s.c.disk, func() event {
		exists := false
		for _, f := range st.FileStats() {
			if f.Size > 0 {
				exists = true
				break
			}
		}
		return evFunc(func(s *Session) { s.dataFound(gen, exists) })
	})
}

func (s *Session) dataFound(gen uint32, exists bool) {
	if gen != s.life.gen || s.life.state != StateChecking {
		return // stopped or restarted meanwhile
	}
	if exists {
		s.startCheck(false)
		return
	}
	s.begin(bitset.New(uint(s.mi.NumPieces())))
}

// openStore opens the torrent's storage if it is not open yet; false (and
// state error) when that fails.
func (s *Session) openStore() bool {
	if s.store != nil {
		return true
	}
	st, err := storage.OpenWith(s.settings.Dir, s.mi, storage.Options{Root: s.c.cfg.DownloadRoot, Files: s.c.files, Cache: s.c.cache})
	if err != nil {
		s.setError(err)
		return false
	}
	s.store = st
	st.SetSkipped(s.dl.skip)
	return true
}

// startCheck hashes every piece on disk, off the session thread; the result
// comes back to recheckDone. thenStop keeps the torrent stopped afterwards
// (a recheck the user asked for while it was stopped).
func (s *Session) startCheck(thenStop bool) {
	s.to(onCheck)
	s.life.checkThenStop = thenStop
	s.life.rechecks++
	s.dirty = true
	s.publish()
	s.life.gen++
	gen, st, pool, ctx := s.life.gen, s.store, s.c.hash, s.c.ctx
	s.submit(s.c.wait, func() event {
		have, err := storage.Recheck(ctx, st, pool, nil)
		return evFunc(func(s *Session) { s.recheckDone(gen, have, err) })
	})
}

// recheckEvent hashes the torrent's data again on the user's request: a
// running or failed torrent then transfers from what the disk really
// holds; a stopped one stays stopped with the new count.
type recheckEvent struct{ done chan error }

func (e recheckEvent) handle(s *Session) {
	e.done <- s.recheck()
}

func (s *Session) recheck() error {
	switch s.life.state {
	case StateChecking:
		return nil // already under way
	case StateMetadata:
		return ErrNoMetadata
	case StateMoving:
		return fmt.Errorf("%w: a move is under way", ErrBusy)
	}
	stopped := s.life.state == StateStopped
	if !stopped {
		s.closeAllPeers()
		s.dropTransfers()
	}
	s.life.err = nil
	s.dl.stopHave = nil
	s.persist.dirty = true
	if !s.openStore() {
		return nil // the error state says why
	}
	if s.life.started.IsZero() || !stopped {
		s.life.started = s.now
	}
	s.startCheck(stopped)
	return nil
}

// dropTransfers forgets the pieces in progress, the picker and the web
// seeds' fetches: what is verified stays.
func (s *Session) dropTransfers() {
	s.webStop()
	s.dl.stop(s.recycle)
}

// Recheck hashes a torrent's data again (see recheckEvent). It fails with
// ErrNotFound, or ErrNoMetadata for a magnet still fetching its info dict.
// Safe for concurrent use.
func (c *Client) Recheck(ih metainfo.Hash) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	done := make(chan error, 1)
	s.post(recheckEvent{done: done})
	return <-done
}

func (s *Session) recheckDone(gen uint32, have *bitset.BitSet, err error) {
	if s.checkDone != nil {
		defer s.checkDone()
	}
	if gen != s.life.gen || s.life.state != StateChecking {
		return
	}
	if err != nil {
		s.setError(fmt.Errorf("engine: recheck: %w", err))
		return
	}
	s.persist.dirty = true // what the disk holds may differ from the record
	if s.life.checkThenStop {
		s.life.checkThenStop = false
		s.dl.stopHave = have
		s.to(onStop)
		s.dirty = true
		s.publish()
		s.saveResume(true)
		return
	}
	s.begin(have)
}

// begin starts transfers from a known set of verified pieces.
func (s *Session) begin(have *bitset.BitSet) {
	p, err := picker.FromMeta(s.mi, have, s.rng)
	if err != nil {
		s.setError(err)
		return
	}
	p.SetSequential(s.settings.Sequential)
	p.SetMaxActive(maxActivePieces(s.mi.PieceLength))
	s.dl.pick = p
	s.pickerPriorities()
	for _, peer := range s.swarm.peers {
		s.announceHaves(peer)
		s.registerPieces(peer)
	}
	s.webStart()
	if s.complete() {
		s.to(onComplete)
		s.ensureEmptyFiles()
	} else {
		s.to(onBegin)
	}
	s.joinSwarm()
	if s.life.state == StateSeeding {
		s.publish()
		s.notifyComplete()
	}
}

// joinSwarm tells the trackers we started (once per start: a magnet that
// just got its metadata is already known to them), asks the DHT, dials
// known peers and records the new state.
func (s *Session) joinSwarm() {
	if s.disc.join() {
		s.disc.trackers.AnnounceNow()
		s.announce(tracker.Started)
	}
	s.connectPeers()
	s.dhtAnnounce()
	s.dirty = true
	s.publish()
	s.saveResume(!s.persist.restored)
}

// stopEvent closes every peer, tells the trackers and keeps what is
// verified. user says the user asked (the torrent stays stopped across
// restarts), as opposed to a daemon shutdown.
type stopEvent struct {
	done chan struct{}
	user bool
}

func (e stopEvent) handle(s *Session) {
	s.stop(e.user)
	close(e.done)
}

// stop ends a run: see stopEvent.
func (s *Session) stop(user bool) {
	if user {
		s.queued = false
		s.settings.Stopped = true
		s.persist.dirty = true
		s.persist.restored = false
		s.mv.startAfter = false
	}
	if s.life.state == StateMoving {
		return // moveDone settles it; the move's job writes the records
	}
	if s.life.state == StateStopped {
		s.saveResume(user)
		return
	}
	wasRunning := s.running()
	s.life.gen++
	s.closeAllPeers()
	s.to(onStop)
	s.mag.stop()
	s.disc.joined = false
	if wasRunning {
		s.announceStopped()
	}
	s.dropTransfers()
	s.dirty = true
	s.publish()
	// Unchanged restored torrents keep their record: a daemon with 10,000
	// of them must still stop within 5 s.
	if !s.persist.restored || s.persist.dirty {
		s.persist.dirty = true
		s.saveResume(true)
	}
}

// removeEvent stops the session and, if asked, deletes its data.
type removeEvent struct {
	deleteData bool
	done       chan error
}

func (e removeEvent) handle(s *Session) {
	if s.life.state == StateMoving {
		s.mv.removal = &e // after the move, from wherever the data is
		return
	}
	s.stop(false)
	s.emitRemoved(e.deleteData)
	if p := s.c.cfg.Persister; p != nil {
		p.Remove(s.ih)
	}
	st := s.store
	s.store = nil
	if st == nil {
		e.done <- nil
		return
	}
	// Closing waits for reads in flight, deleting walks the disk: a job.
	s.submit(s.c.disk, func() event {
		if e.deleteData {
			e.done <- st.Remove()
		} else {
			e.done <- st.Close()
		}
		return nil
	})
}

// ensureEmptyFiles creates a complete torrent's zero-length files, which no
// write created, off the session thread; failing that is a disk error like
// any other.
func (s *Session) ensureEmptyFiles() {
	st, gen := s.store, s.life.gen
	s.submit(s.c.disk, func() event {
		err := st.EnsureEmptyFiles()
		if err == nil {
			return nil
		}
		return evFunc(func(s *Session) {
			if gen == s.life.gen && s.life.state == StateSeeding {
				s.setError(fmt.Errorf("engine: %w", err))
			}
		})
	})
}

func (s *Session) closeAllPeers() {
	for _, p := range s.swarm.peers {
		s.dropPeer(p, errors.New("engine: session stopped"))
	}
}
