package engine

import (
	"errors"
	"fmt"
	"path/filepath"

	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
)

// Moving a torrent's data to another folder (Client.Move). The session
// never touches the disk: a quick job on the disk lane first checks that
// the destination holds none of the torrent's names, then the session
// closes its peers and storage and shows StateMoving while the move runs
// as one job on the wait lane (which bounds moves, like rechecks, to a
// few at once without taking the disk lane's workers from block I/O). The
// job records the intent durably (the record's MoveTo), moves file by
// file (storage.Move), records the new folder and prunes the old folders;
// the session then goes back to what it was, from the new folder, with the
// pieces it had verified and no recheck. A crash at any point leaves a
// record that start-up (state.Store.FinishMove) completes.

// DurablePersister is implemented by persisters that can write a record
// synchronously (synced before returning), as a move's intent must be
// before its first file moves. Without it a move still runs, but a crash
// in the middle of one is not recovered.
type DurablePersister interface {
	// SaveDurably writes r now; it blocks on disk, so the engine calls it
	// from a lane. A torrent removed meanwhile must not be written back.
	SaveDurably(r Resume) error
}

// mover is the session's part for moves. Session-owned.
type mover struct {
	checking bool   // a destination check is under way
	to       string // the folder being moved to, while StateMoving
	prev     State  // the state to go back to
	prevErr  error
	// startAfter: the user started the torrent during the move.
	startAfter bool
	// removal waits for the move to end.
	removal *removeEvent
	// pending is a destination a move failed to reach and could not be
	// undone from: records keep saying so (MoveTo), and a start finishes
	// the move first.
	pending string
}

// Move moves a torrent's data to dir, an absolute folder inside the
// download root (the API resolves it), and returns once the move is
// accepted: the torrent then shows StateMoving until it is back where it
// was. Moving to its current folder does nothing. It fails with
// ErrNotFound, ErrNoMetadata (a magnet without its info dict), ErrBusy (a
// move or check under way), ErrMoveTarget (the destination already holds
// one of the torrent's files; nothing is touched) or ErrBadMove (a folder
// outside the download root or inside the torrent's own). Safe for
// concurrent use.
func (c *Client) Move(ih metainfo.Hash, dir string) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	done := make(chan error, 1)
	s.post(moveEvent{dir: dir, done: done})
	return <-done
}

type moveEvent struct {
	dir  string
	done chan error
}

func (e moveEvent) handle(s *Session) {
	if err := s.requestMove(e.dir, e.done); err != nil {
		e.done <- err
	}
}

// requestMove validates a move and starts its destination check; the
// answer goes to done from moveChecked.
func (s *Session) requestMove(dir string, done chan error) error {
	switch {
	case s.removed.Load():
		return ErrNotFound
	case s.mi == nil:
		return ErrNoMetadata
	case s.mv.checking || s.life.state == StateMoving:
		return fmt.Errorf("%w: a move is under way", ErrBusy)
	case !s.canMove():
		return fmt.Errorf("%w: it is %s", ErrBusy, s.life.state)
	case s.mv.pending != "":
		return fmt.Errorf("%w: an earlier move to %s is unfinished: start the torrent to finish it", ErrBusy, s.mv.pending)
	}
	if filepath.Clean(dir) == filepath.Clean(s.settings.Dir) {
		done <- nil
		return nil
	}
	m, err := s.planMove(s.settings.Dir, dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMove, err)
	}
	s.mv.checking = true
	s.submit(s.c.disk, func() event {
		err := m.Conflict()
		return evFunc(func(s *Session) { s.moveChecked(m, dir, err, done) })
	})
	return nil
}

// canMove: the lifecycle allows a move from the current state (not while
// checking, fetching metadata or moving).
func (s *Session) canMove() bool {
	_, ok := nextState(s.life.state, onMove)
	return ok
}

func (s *Session) planMove(from, to string) (*storage.Move, error) {
	return storage.NewMove(s.mi, from, to, s.c.cfg.DownloadRoot, storage.MoveExtras(s.ih))
}

func (s *Session) moveChecked(m *storage.Move, dir string, err error, done chan error) {
	s.mv.checking = false
	switch {
	case s.removed.Load():
		err = ErrNotFound
	case errors.Is(err, storage.ErrDestExists):
		err = fmt.Errorf("%w: %v", ErrMoveTarget, err)
	case err != nil:
		err = fmt.Errorf("engine: move: %w", err)
	case !s.canMove():
		err = fmt.Errorf("%w: it is %s", ErrBusy, s.life.state)
	}
	if err == nil {
		s.startMove(m, dir, false)
	}
	done <- err
}

// startMove closes the peers and the storage and hands the move to the
// wait lane. resume finishes an earlier move instead of starting afresh.
func (s *Session) startMove(m *storage.Move, dir string, resume bool) {
	s.mv.prev, s.mv.prevErr, s.mv.to, s.mv.startAfter = s.life.state, s.life.err, dir, false
	if s.running() {
		s.closeAllPeers()
		s.dropTransfers()
	}
	s.life.gen++ // outcomes of reads and writes in flight are dropped
	s.to(onMove)
	s.life.err = nil
	st := s.store
	s.store = nil
	intent := s.resumeRecord()
	intent.MoveTo = dir
	done := intent
	done.Dir, done.MoveTo = dir, ""
	dp, _ := s.c.cfg.Persister.(DurablePersister)
	ctx, log := s.c.ctx, s.c.log
	s.dirty = true
	s.publish()
	s.submit(s.c.wait, func() event {
		res := moveResult{dir: dir}
		if st != nil {
			st.Close() // waits for I/O in flight; no descriptor keeps the old paths
		}
		if dp != nil {
			res.err = dp.SaveDurably(intent)
		}
		if res.err != nil {
			res.undone = true // nothing moved
		} else if res.err = m.Run(ctx, resume); res.err == nil {
			if dp != nil {
				if err := dp.SaveDurably(done); err != nil {
					// The files moved; the record still says where to, and
					// start-up finishes the move, which is now only this.
					log.Error("recording a move failed", "infohash", intent.InfoHash.String(), "to", dir, "error", err.Error())
				}
			}
			m.Prune()
		} else if ctx.Err() == nil && !resume {
			// Put back what moved, so the torrent goes on from where
			// it was, and forget the intent.
			back := m.Reverse()
			if err := back.Run(ctx, true); err == nil {
				res.undone = true
				back.Prune()
				if dp != nil {
					intent.MoveTo = ""
					if err := dp.SaveDurably(intent); err != nil {
						log.Error("recording an undone move failed", "infohash", intent.InfoHash.String(), "error", err.Error())
					}
				}
			}
		}
		return evFunc(func(s *Session) { s.moveDone(res) })
	})
}

type moveResult struct {
	dir    string
	err    error
	undone bool // the move failed and the data is back where it was
}

// moveDone takes the torrent back to what it was, from the new folder.
func (s *Session) moveDone(res moveResult) {
	// Nothing leaves StateMoving but this: the files moved, so the folder
	// must follow whatever the state.
	s.mv.to = ""
	switch {
	case res.err == nil:
		s.settings.Dir = res.dir
		s.mv.pending = ""
	case !res.undone:
		s.mv.pending = res.dir
	}
	s.persist.dirty, s.persist.restored = true, false
	s.to(onStop)
	s.dirty = true
	if r := s.mv.removal; r != nil {
		s.mv.removal = nil
		s.openStore()
		r.handle(s)
		return
	}
	if s.c.ctx.Err() != nil { // the client is closing: stay stopped
		s.publish()
		return
	}
	if res.err != nil {
		where := s.settings.Dir
		if !res.undone {
			where = "both folders; starting the torrent finishes the move"
		}
		s.setError(fmt.Errorf("engine: moving to %s failed: %w; the data is in %s", res.dir, res.err, where))
		s.saveResume(true)
		return
	}
	switch {
	case s.mv.prev == StateError && !s.mv.startAfter:
		s.life.err = s.mv.prevErr
		s.to(onFail)
	case s.mv.startAfter || (s.mv.prev != StateStopped && !s.settings.Stopped):
		s.publish()
		s.start(nil) // from the pieces verified before the move: no recheck
		return
	}
	s.publish()
	s.saveResume(true)
}

// finishPendingMove runs a move that failed half way (or that start-up
// could not finish) to its end before the torrent starts; true when it
// took over the start.
func (s *Session) finishPendingMove() bool {
	if s.mv.pending == "" || s.mi == nil {
		return false
	}
	m, err := s.planMove(s.settings.Dir, s.mv.pending)
	if err != nil {
		s.setError(fmt.Errorf("engine: finishing the move to %s: %w", s.mv.pending, err))
		return true
	}
	s.startMove(m, s.mv.pending, true)
	s.mv.startAfter = true
	return true
}
