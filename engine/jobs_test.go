package engine

import (
	"crypto/sha1"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
)

// stallDisk occupies every disk worker until the returned func is called.
func stallDisk(t *testing.T, c *Client, workers int) (release func()) {
	t.Helper()
	block := make(chan struct{})
	started := make(chan struct{}, workers)
	for range workers {
		if !c.disk.TrySubmit(storage.Job{Kind: storage.KindFunc, Func: func() { started <- struct{}{}; <-block }}) {
			t.Fatal("disk lane refused a job")
		}
	}
	for range workers {
		<-started
	}
	return func() { close(block) }
}

// A stalled disk never holds up a session: the start-up stat waits on the
// disk lane while the torrent shows checking, a stop is answered at once,
// and the stat's late outcome does not restart the stopped torrent.
func TestStalledDiskDoesNotBlockSession(t *testing.T) {
	c := New(Config{Tick: -1, DiskWorkers: 1, Logf: t.Logf})
	defer c.Close()
	release := stallDisk(t, c, 1)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.bin"), make([]byte, 100), 0o644)
	mi := &metainfo.MetaInfo{Name: "x.bin", PieceLength: 16 << 10, TotalLength: 100, SingleFile: true,
		Files: []metainfo.File{{Path: []string{"x.bin"}, Length: 100}}, Pieces: make([]metainfo.Hash, 1)}
	mi.InfoHash = sha1.Sum([]byte("stalled"))
	s, err := c.Add(mi, AddOptions{Settings: Settings{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, StateChecking)
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(mi.InfoHash) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("stop waited for the stalled disk")
	}
	if st := s.Snapshot().State; st != StateStopped {
		t.Fatalf("after stop: %s", st)
	}
	release()
	time.Sleep(50 * time.Millisecond)
	sync := make(chan struct{})
	s.post(evFunc(func(*Session) { close(sync) }))
	<-sync
	if st := s.Snapshot().State; st != StateStopped {
		t.Fatalf("the stat from the stopped run moved the torrent to %s", st)
	}
}

// A job that finds its lane full waits in the session, in order, and runs
// once the lane has room.
func TestParkedJobsRunInOrder(t *testing.T) {
	c := New(Config{Tick: -1, DiskWorkers: 1, Logf: t.Logf})
	defer c.Close()
	s := newSessionCommon(c, [20]byte{9}, t.TempDir(), c.cfg.Now(), nil)
	release := stallDisk(t, c, 1)
	// Fill the lane's queue so the session's jobs must park.
	for c.disk.TrySubmit(storage.Job{Kind: storage.KindFunc, Func: func() {}}) {
	}
	got := make(chan int, 3)
	done := make(chan struct{})
	s.post(evFunc(func(s *Session) {
		for i := range 3 {
			s.submit(s.c.disk, func() event { got <- i; return nil })
		}
		if len(s.parked) != 3 {
			t.Errorf("%d jobs parked, want 3", len(s.parked))
		}
		close(done)
	}))
	<-done
	release()
	// The next batch retries them.
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		s.post(evFunc(func(*Session) {}))
		time.Sleep(10 * time.Millisecond)
	}
	for want := range 3 {
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("job %d ran in place of %d", i, want)
			}
		default:
			t.Fatalf("parked job %d never ran", want)
		}
	}
}

func waitState(t *testing.T, s *Session, want State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Snapshot().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s", s.Snapshot().State, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
