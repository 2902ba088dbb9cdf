package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gotorrentserver/metainfo"
)

// movePersister records what a move writes and where the data was at each
// durable write; gate, when set, holds the first durable write back.
type movePersister struct {
	mu      sync.Mutex
	durable []Resume
	atOld   []bool // the file was still in the old folder when written
	file    string // the torrent's file in the old folder
	gate    chan struct{}
}

func (p *movePersister) AddTorrent(*metainfo.MetaInfo, *Resume) error { return nil }
func (p *movePersister) Save(Resume)                                  {}
func (p *movePersister) Remove(metainfo.Hash)                         {}
func (p *movePersister) SaveDurably(r Resume) error {
	if p.gate != nil {
		<-p.gate
	}
	_, err := os.Stat(p.file)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.durable = append(p.durable, r)
	p.atOld = append(p.atOld, err == nil)
	return nil
}

func newMoveFixture(t *testing.T, p *movePersister) *fixture {
	f := newFixture(t, true)
	p.file = filepath.Join(f.dir, "fx.bin")
	f.c.cfg.Persister = p
	return f
}

func (f *fixture) moveState() (State, Settings) {
	var st State
	var set Settings
	f.s.post(evFunc(func(s *Session) { st, set = s.life.state, s.settings }))
	f.sync()
	return st, set
}

// A seeding torrent moves: its peers are closed, it shows moving, then
// seeds again from the new folder without a recheck; the intent was
// written before the file moved and the new folder after.
func TestMoveSeeding(t *testing.T) {
	p := &movePersister{gate: make(chan struct{})}
	f := newMoveFixture(t, p)
	fc, _ := f.attach(1)
	dest := filepath.Join(f.dir, "new", "place")
	if err := f.c.Move(f.mi.InfoHash, dest); err != nil {
		t.Fatalf("Move: %v", err)
	}
	if st, _ := f.moveState(); st != StateMoving || f.s.Snapshot().State != StateMoving {
		t.Fatalf("state during the move: %s", st)
	}
	if !fc.isClosed() {
		t.Fatal("peer still connected during the move")
	}
	if err := f.c.Move(f.mi.InfoHash, f.dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("second move: %v", err)
	}
	if err := f.c.Recheck(f.mi.InfoHash); !errors.Is(err, ErrBusy) {
		t.Fatalf("recheck during the move: %v", err)
	}
	close(p.gate)
	f.waitFor("seeding again", func() bool { st, _ := f.moveState(); return st == StateSeeding })
	_, set := f.moveState()
	if set.Dir != dest {
		t.Fatalf("dir %q, want %q", set.Dir, dest)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "fx.bin")); !bytes.Equal(got, f.data) {
		t.Fatal("data at the destination differs")
	}
	if _, err := os.Stat(p.file); !os.IsNotExist(err) {
		t.Fatalf("old file still there: %v", err)
	}
	if sn := f.s.Snapshot(); sn.Rechecks != 0 || sn.Have != f.mi.NumPieces() || sn.Settings.Dir != dest {
		t.Fatalf("snapshot: rechecks %d, have %d, dir %q", sn.Rechecks, sn.Have, sn.Settings.Dir)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.durable) != 2 {
		t.Fatalf("%d durable records, want 2", len(p.durable))
	}
	if r := p.durable[0]; r.MoveTo != dest || r.Dir != f.dir || !p.atOld[0] {
		t.Fatalf("intent: dir %q move_to %q, file at the old place %v", r.Dir, r.MoveTo, p.atOld[0])
	}
	if r := p.durable[1]; r.MoveTo != "" || r.Dir != dest || p.atOld[1] {
		t.Fatalf("final: dir %q move_to %q, file at the old place %v", r.Dir, r.MoveTo, p.atOld[1])
	}
}

// Moving to its own folder does nothing; a destination holding a file of
// the torrent's name is refused and touched by nobody.
func TestMoveRefused(t *testing.T) {
	p := &movePersister{}
	f := newMoveFixture(t, p)
	if err := f.c.Move(f.mi.InfoHash, f.dir+"/"); err != nil {
		t.Fatalf("move to its own folder: %v", err)
	}
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "fx.bin"), []byte("theirs"), 0o644)
	if err := f.c.Move(f.mi.InfoHash, dest); !errors.Is(err, ErrMoveTarget) {
		t.Fatalf("move onto their file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "fx.bin")); string(b) != "theirs" {
		t.Fatal("their file changed")
	}
	if st, set := f.moveState(); st != StateSeeding || set.Dir != f.dir || len(p.durable) != 0 {
		t.Fatalf("state %s dir %q, %d records", st, set.Dir, len(p.durable))
	}
	if err := f.c.Move(metainfo.Hash{9}, dest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown torrent: %v", err)
	}
}

// A stopped torrent stays stopped after its move, unless started during
// it; a removal asked for during a move deletes the data where it went.
func TestMoveStoppedStartRemove(t *testing.T) {
	p := &movePersister{gate: make(chan struct{})}
	f := newMoveFixture(t, p)
	f.c.Stop(f.mi.InfoHash)
	dest := filepath.Join(f.dir, "d1")
	if err := f.c.Move(f.mi.InfoHash, dest); err != nil {
		t.Fatal(err)
	}
	p.gate <- struct{}{}
	p.gate <- struct{}{}
	f.waitFor("stopped after the move", func() bool { st, set := f.moveState(); return st == StateStopped && set.Dir == dest })

	dest2 := filepath.Join(f.dir, "d2")
	if err := f.c.Move(f.mi.InfoHash, dest2); err != nil {
		t.Fatal(err)
	}
	f.c.Start(f.mi.InfoHash)
	close(p.gate)
	f.waitFor("seeding after the move", func() bool { st, set := f.moveState(); return st == StateSeeding && set.Dir == dest2 })
	if f.s.Snapshot().Rechecks != 0 {
		t.Fatal("rechecked after the move")
	}

	p.gate = make(chan struct{})
	dest3 := filepath.Join(f.dir, "d3")
	if err := f.c.Move(f.mi.InfoHash, dest3); err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	go func() { removed <- f.c.Remove(f.mi.InfoHash, true) }()
	close(p.gate)
	if err := <-removed; err != nil {
		t.Fatalf("remove: %v", err)
	}
	for _, d := range []string{f.dir, dest, dest2, dest3} {
		if _, err := os.Stat(filepath.Join(d, "fx.bin")); !os.IsNotExist(err) {
			t.Fatalf("data left in %s after remove: %v", d, err)
		}
	}
}

// A file appearing at the destination after the check fails the move:
// nothing of theirs is touched, the data stays where it was, and the
// torrent shows the error; starting it seeds from the old folder with no
// recheck.
func TestMoveFailsAndIsUndone(t *testing.T) {
	p := &movePersister{gate: make(chan struct{})}
	f := newMoveFixture(t, p)
	dest := filepath.Join(f.dir, "late")
	if err := f.c.Move(f.mi.InfoHash, dest); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "fx.bin"), []byte("theirs"), 0o644)
	close(p.gate)
	f.waitFor("the move to fail", func() bool { st, _ := f.moveState(); return st == StateError })
	if sn := f.s.Snapshot(); sn.Settings.Dir != f.dir || sn.Error == "" {
		t.Fatalf("after the failed move: dir %q error %q", sn.Settings.Dir, sn.Error)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "fx.bin")); string(b) != "theirs" {
		t.Fatal("their file changed")
	}
	if got, _ := os.ReadFile(p.file); !bytes.Equal(got, f.data) {
		t.Fatal("data not back in the old folder")
	}
	p.mu.Lock()
	last := p.durable[len(p.durable)-1]
	p.mu.Unlock()
	if last.MoveTo != "" || last.Dir != f.dir {
		t.Fatalf("last record: dir %q move_to %q", last.Dir, last.MoveTo)
	}
	f.c.Start(f.mi.InfoHash)
	f.waitFor("seeding again", func() bool { st, _ := f.moveState(); return st == StateSeeding })
	if f.s.Snapshot().Rechecks != 0 {
		t.Fatal("rechecked")
	}
}

// A torrent restored with a move start-up could not finish (AddOptions
// MoveTo) keeps saying so, and starting it finishes the move first.
func TestPendingMoveFinishedOnStart(t *testing.T) {
	f := newFixture(t, true)
	f.c.Remove(f.mi.InfoHash, false)
	p := &movePersister{file: filepath.Join(f.dir, "fx.bin")}
	f.c.cfg.Persister = p
	dest := filepath.Join(f.dir, "pending")
	s, err := f.c.Add(f.mi, AddOptions{Settings: Settings{Dir: f.dir, Stopped: true}, MoveTo: dest, Restored: true})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	if r := s.resumeRecordSync(f); r.MoveTo != dest {
		t.Fatalf("record move_to %q, want %q", r.MoveTo, dest)
	}
	f.c.Start(f.mi.InfoHash)
	f.waitFor("seeding from the destination", func() bool { st, set := f.moveState(); return st == StateSeeding && set.Dir == dest })
	if got, _ := os.ReadFile(filepath.Join(dest, "fx.bin")); !bytes.Equal(got, f.data) {
		t.Fatal("data not at the destination")
	}
	if r := s.resumeRecordSync(f); r.MoveTo != "" {
		t.Fatalf("record still says move_to %q", r.MoveTo)
	}
}

func (s *Session) resumeRecordSync(f *fixture) Resume {
	var r Resume
	s.post(evFunc(func(s *Session) { r = s.resumeRecord() }))
	f.sync()
	return r
}
