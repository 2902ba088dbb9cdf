package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/tracker"
)

// startEvent opens storage, rechecks whatever data already exists and then
// downloads or seeds. have, when set, is a trusted resume bitfield that
// skips the recheck.
type startEvent struct{ have *bitset.BitSet }

func (e startEvent) handle(s *Session) {
	if s.state != StateStopped && s.state != StateError {
		return
	}
	if s.userStopped {
		s.restored = false // a user's start changes the record
	}
	s.userStopped = false
	s.resumeDirty = !s.restored
	s.err = nil
	if e.have == nil {
		e.have = s.stopHave
	}
	if s.mi == nil {
		s.startMetadata()
		return
	}
	if s.store == nil {
		st, err := storage.OpenWith(s.dir, s.mi, storage.Options{Files: s.c.files, Cache: s.c.cache})
		if err != nil {
			s.setError(err)
			return
		}
		s.store = st
	}
	s.started = s.now
	if e.have != nil || !s.dataExists() {
		have := e.have
		if have == nil {
			have = bitset.New(uint(s.mi.NumPieces()))
		}
		s.begin(have)
		return
	}
	s.state = StateChecking
	s.rechecks++
	s.dirty = true
	s.publish()
	st, pool := s.store, s.c.hash
	go func() {
		have, err := storage.Recheck(context.Background(), st, pool, nil)
		s.post(evFunc(func(s *Session) { s.recheckDone(have, err) }))
	}()
}

// dataExists is a cheap stat of the torrent's files: a fresh download skips
// the recheck entirely.
func (s *Session) dataExists() bool {
	for i := range s.mi.Files {
		if fi, err := os.Stat(s.store.Path(i)); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

func (s *Session) recheckDone(have *bitset.BitSet, err error) {
	if s.checkDone != nil {
		defer s.checkDone()
	}
	if s.state != StateChecking {
		return
	}
	if err != nil {
		s.setError(fmt.Errorf("engine: recheck: %w", err))
		return
	}
	s.resumeDirty = true // what the disk holds may differ from the record
	s.begin(have)
}

// begin starts transfers from a known set of verified pieces.
func (s *Session) begin(have *bitset.BitSet) {
	p, err := picker.FromMeta(s.mi, have, s.rng)
	if err != nil {
		s.setError(err)
		return
	}
	p.SetSequential(s.sequential)
	p.SetMaxActive(maxActivePieces(s.mi.PieceLength))
	s.pick = p
	for _, peer := range s.peers {
		s.registerPieces(peer)
	}
	if s.complete() {
		s.state = StateSeeding
		s.store.EnsureEmptyFiles()
	} else {
		s.state = StateDownloading
	}
	s.joinSwarm()
	if s.state == StateSeeding {
		s.publish()
		s.notifyComplete()
	}
}

// joinSwarm tells the trackers we started (once per start: a magnet that
// just got its metadata is already known to them), asks the DHT, dials
// known peers and records the new state.
func (s *Session) joinSwarm() {
	if !s.joined {
		s.joined = true
		s.trackers.AnnounceNow()
		s.announce(tracker.Started)
	}
	s.connectPeers()
	s.dhtAnnounce()
	s.dirty = true
	s.publish()
	s.saveResume(!s.restored)
}

// stopEvent closes every peer, tells the trackers and keeps what is
// verified. user says the user asked (the torrent stays stopped across
// restarts), as opposed to a daemon shutdown.
type stopEvent struct {
	done chan struct{}
	user bool
}

func (e stopEvent) handle(s *Session) {
	defer close(e.done)
	if e.user {
		s.userStopped = true
		s.resumeDirty = true
		s.restored = false
	}
	if s.state == StateStopped {
		s.saveResume(e.user)
		return
	}
	wasRunning := s.running()
	s.closeAllPeers()
	s.state = StateStopped
	s.fetch, s.hashingMeta, s.joined = nil, false, false
	if wasRunning {
		s.announceStopped()
	}
	for k, pb := range s.pieces {
		s.recycle(pb.data)
		delete(s.pieces, k)
	}
	if s.pick != nil {
		s.stopHave = s.pick.Have()
		s.pick = nil
	}
	s.dirty = true
	s.publish()
	// Unchanged restored torrents keep their record: a daemon with 10,000
	// of them must still stop within 5 s.
	if !s.restored || s.resumeDirty {
		s.resumeDirty = true
		s.saveResume(true)
	}
}

// removeEvent stops the session and, if asked, deletes its data.
type removeEvent struct {
	deleteData bool
	done       chan error
}

func (e removeEvent) handle(s *Session) {
	stopped := make(chan struct{})
	stopEvent{done: stopped}.handle(s)
	var err error
	if s.store != nil {
		if e.deleteData {
			err = s.store.Remove()
		} else {
			err = s.store.Close()
		}
		s.store = nil
	}
	if p := s.c.cfg.Persister; p != nil {
		p.Remove(s.ih)
	}
	e.done <- err
}

func (s *Session) closeAllPeers() {
	for _, p := range s.peers {
		s.dropPeer(p, errors.New("engine: session stopped"))
	}
}
