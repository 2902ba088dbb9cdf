package engine

import "testing"

// The table is the lifecycle: these are the moves a user can see, and the
// ones that must never happen.
func TestLifecycleTable(t *testing.T) {
	allowed := []struct {
		from State
		on   trigger
		to   State
	}{
		{StateStopped, onFindData, StateChecking},
		{StateStopped, onMagnet, StateMetadata},
		{StateStopped, onBegin, StateDownloading}, // trusted resume pieces
		{StateStopped, onComplete, StateSeeding},
		{StateChecking, onCheck, StateChecking}, // the stat found data: hash it
		{StateChecking, onBegin, StateDownloading},
		{StateChecking, onComplete, StateSeeding},
		{StateChecking, onStop, StateStopped},
		{StateDownloading, onComplete, StateSeeding},
		{StateSeeding, onCheck, StateChecking},   // /recheck
		{StateSeeding, onWant, StateDownloading}, // a skipped file wanted again
		{StateMetadata, onMetadata, StateStopped},
		{StateError, onFindData, StateChecking}, // starting clears an error
		{StateError, onCheck, StateChecking},
		{StateSeeding, onMove, StateMoving}, // /movetorrent
		{StateDownloading, onMove, StateMoving},
		{StateStopped, onMove, StateMoving},
		{StateMoving, onStop, StateStopped}, // the move is done; a start follows if it ran before
		{StateMoving, onFail, StateError},
	}
	for _, c := range allowed {
		if got, ok := nextState(c.from, c.on); !ok || got != c.to {
			t.Errorf("%s on %s: got %s (allowed %v), want %s", c.from, c.on, got, ok, c.to)
		}
	}
	for st := StateStopped; st <= StateMetadata; st++ {
		if got, ok := nextState(st, onStop); !ok || got != StateStopped {
			t.Errorf("%s cannot be stopped", st)
		}
		if got, ok := nextState(st, onFail); !ok || got != StateError {
			t.Errorf("%s cannot fail", st)
		}
	}
	refused := []struct {
		from State
		on   trigger
	}{
		{StateSeeding, onBegin}, // a seed goes back to downloading only when it wants more
		{StateStopped, onWant},
		{StateDownloading, onFindData}, // only a stopped torrent is started
		{StateSeeding, onMagnet},
		{StateDownloading, onMetadata},
		{StateMetadata, onComplete}, // no pieces before the info dict
		{StateMetadata, onCheck},
		{StateChecking, onMove}, // the check reads the files
		{StateMetadata, onMove}, // no files known yet
		{StateMoving, onMove},
		{StateMoving, onCheck},
		{StateMoving, onBegin}, // transfers only after the move settled
	}
	for _, c := range refused {
		if got, ok := nextState(c.from, c.on); ok {
			t.Errorf("%s on %s allowed, to %s", c.from, c.on, got)
		}
	}
}

// A move the table refuses leaves the torrent where it was.
func TestRefusedMoveKeepsState(t *testing.T) {
	c := New(Config{Tick: -1, Logf: func(string, ...any) {}})
	defer c.Close()
	s := newSessionCommon(c, [20]byte{1}, t.TempDir(), c.cfg.Now(), nil)
	s.life.state = StateSeeding
	if s.to(onBegin) || s.life.state != StateSeeding {
		t.Fatalf("seeding torrent moved to %s on begin", s.life.state)
	}
	if !s.to(onStop) || s.life.state != StateStopped {
		t.Fatalf("stop: state %s", s.life.state)
	}
}
