package state

import (
	"context"
	"errors"
	"fmt"
	"os"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
)

// SaveDurably writes r now, synced, in step with the writer: an older
// record still queued is dropped so it cannot land after this one. A
// torrent removed meanwhile (its removal queued or done) is not written
// back. Implements the engine's DurablePersister; it blocks on disk, so
// the engine calls it from a lane.
func (st *Store) SaveDurably(r resume.Record) error {
	ih := r.InfoHash
	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	st.mu.Lock()
	if q, ok := st.pending[ih]; ok && q == nil {
		st.mu.Unlock()
		return nil
	}
	delete(st.pending, ih)
	st.mu.Unlock()
	if !exists(st.torrentPath(ih)) && !exists(st.magnetPath(ih)) {
		return nil
	}
	if err := st.writeResume(ih, &r); err != nil {
		return fmt.Errorf("state: saving %s: %w", ih, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// FinishMove completes the move e's record says was under way when the
// daemon stopped (Resume.MoveTo set), beneath root (the download root), and
// records it done, synced; e then names the new folder. It runs at
// start-up, before the torrent is added, and is idempotent: files at the
// destination and gone from the source count as moved, a file at both
// loses its source (a copy reaches its final name only when whole). The
// record keeps its file sizes and times, which moving preserves, so
// TrustedHave judges the moved files as it would have the old ones. On
// failure e and its record are left as they were, still saying where the
// move goes.
func (st *Store) FinishMove(e *Entry, root string) error {
	r := e.Resume
	if !e.HasResume || r.MoveTo == "" {
		return nil
	}
	ih := e.InfoHash()
	var m *storage.Move
	if e.MetaInfo != nil {
		var err error
		if m, err = storage.NewMove(e.MetaInfo, r.Dir, r.MoveTo, root, storage.MoveExtras(ih)); err != nil {
			return fmt.Errorf("state: finishing the move of %s to %s: %w", ih, r.MoveTo, err)
		}
		if err := m.Run(context.Background(), true); err != nil {
			return fmt.Errorf("state: finishing the move of %s to %s: %w", ih, r.MoveTo, err)
		}
	}
	r.Dir, r.MoveTo = r.MoveTo, ""
	rec := toRecord(&r)
	rec.Files = e.Files
	st.applyMu.Lock()
	err := st.writeRecord(ih, rec)
	st.applyMu.Unlock()
	if err != nil {
		return fmt.Errorf("state: finishing the move of %s: %w", ih, err)
	}
	if m != nil {
		m.Prune()
	}
	e.Resume = r
	return nil
}
