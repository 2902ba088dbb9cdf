package engine

import (
	"crypto/sha1"
	"fmt"
	"testing"
	"time"

	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// Every State has a name below NumStates, and none past it: a state added
// without moving NumStates would be left out of /stats and /metrics.
func TestNumStates(t *testing.T) {
	for st := range State(NumStates) {
		if st.String() == "" {
			t.Fatalf("state %d has no name", st)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatalf("State(%d) has a name: move NumStates past it", NumStates)
		}
	}()
	_ = State(NumStates).String()
}

// A downloaded torrent shows in the sums, a failed piece and its ban are
// counted, and removing the torrent leaves the byte totals where they were.
func TestStatsSumsTorrents(t *testing.T) {
	f := newFixture(t, false)
	other := newFixtureOn(t, f.c, "other")
	seedConn, seed := f.attach(1)
	f.attach(2) // stays once we are a seed too
	f.deliver(seed, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	answered := map[[2]uint32]bool{}
	f.waitFor("download to complete", func() bool {
		f.serveRequests(seedConn, seed, answered, nil)
		return f.s.Snapshot().State == StateSeeding
	})
	f.tick(time.Second)
	st := f.c.Stats()
	if st.Torrents != 2 || st.States[StateSeeding] != 1 || st.States[StateStopped] != 1 {
		t.Fatalf("torrents %d, by state %v: want one seeding and one stopped", st.Torrents, st.States)
	}
	if st.Downloaded < int64(len(f.data)) {
		t.Fatalf("downloaded %d, want at least the torrent's %d bytes", st.Downloaded, len(f.data))
	}
	if st.Peers != 1 {
		t.Fatalf("peers %d, want the leech", st.Peers)
	}
	if st.Disk.Workers != 8 || st.Hash.Workers < 1 || st.HashFailures != 0 || st.Bans != 0 || st.DHT {
		t.Fatalf("lanes %+v %+v, hash failures %d, bans %d, dht %v", st.Disk, st.Hash, st.HashFailures, st.Bans, st.DHT)
	}
	before := st.Downloaded
	if err := f.c.Remove(f.mi.InfoHash, false); err != nil {
		t.Fatal(err)
	}
	st = f.c.Stats()
	if st.Torrents != 1 || st.States[StateStopped] != 1 || st.Downloaded != before {
		t.Fatalf("after removal: torrents %d, states %v, downloaded %d (was %d)", st.Torrents, st.States, st.Downloaded, before)
	}
	if err := f.c.Remove(other, false); err != nil {
		t.Fatal(err)
	}
	if st = f.c.Stats(); st.Torrents != 0 || st.Downloaded != before {
		t.Fatalf("after removing all: torrents %d, downloaded %d (was %d)", st.Torrents, st.Downloaded, before)
	}
}

// A lane's busy workers and queue are what it is doing now.
func TestPoolBusy(t *testing.T) {
	p := storage.NewPool(2, 8)
	defer p.Close()
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	for range 3 {
		p.TrySubmit(storage.Job{Kind: storage.KindFunc, Func: func() { started <- struct{}{}; <-release }})
	}
	<-started
	<-started
	if st := laneStats(p); st.Busy != 2 || st.Workers != 2 || st.Queued != 1 {
		t.Fatalf("lane %+v: want 2 busy of 2 and 1 queued", st)
	}
	close(release)
	<-started
	deadline := time.Now().Add(5 * time.Second)
	for laneStats(p).Busy != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lane %+v: still busy", laneStats(p))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type countingDHT struct{ DHT }

func (countingDHT) NodeCount() int { return 42 }

func TestStatsDHTNodes(t *testing.T) {
	c := New(Config{Tick: -1, DHT: countingDHT{}, Logf: t.Logf})
	defer c.Close()
	if st := c.Stats(); !st.DHT || st.DHTNodes != 42 {
		t.Fatalf("dht %v nodes %d", st.DHT, st.DHTNodes)
	}
}

// A scrape's cost with 10,000 torrents: go test -run '^$' -bench Stats ./engine
func BenchmarkStats10k(b *testing.B) {
	c := New(Config{Tick: -1, Logf: func(string, ...any) {}})
	defer c.Close()
	dir := b.TempDir()
	for i := range 10_000 {
		name := fmt.Sprint("t", i)
		mi := &metainfo.MetaInfo{Name: name, PieceLength: 16 << 10, TotalLength: 100, SingleFile: true,
			Files: []metainfo.File{{Path: []string{name}, Length: 100}}, Pieces: make([]metainfo.Hash, 1)}
		mi.InfoHash = sha1.Sum([]byte(name))
		if _, err := c.Add(mi, AddOptions{Settings: Settings{Dir: dir, Stopped: true}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if st := c.Stats(); st.Torrents != 10_000 {
			b.Fatalf("%d torrents", st.Torrents)
		}
	}
}
