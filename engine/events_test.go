package engine

import (
	"sync"
	"testing"
	"time"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// readAll reads every event waiting for sub.
func readAll(sub *Subscription) []Event {
	var out []Event
	buf := make([]Event, 0, 64)
	for {
		got := sub.Read(buf[:0])
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
	}
}

func types(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func checkIDs(t *testing.T, evs []Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Fatalf("ids do not increase: %d after %d (%v)", evs[i].ID, evs[i-1].ID, types(evs))
		}
	}
}

// A download seen through the feed: added, the states it went through, its
// progress (throttled: the clock stands still, so one event until the end)
// with the final figures before completed, then removed last.
func TestEventsOfADownload(t *testing.T) {
	f := newFixture(t, false)
	sub := f.c.Subscribe(f.c.feed.base) // everything since the client started
	defer sub.Close()
	seedConn, seed := f.attach(1)
	f.deliver(seed, wire.Message{Type: wire.HaveAll}, wire.Message{Type: wire.Unchoke})
	answered := map[[2]uint32]bool{}
	f.waitFor("download to complete", func() bool {
		f.serveRequests(seedConn, seed, answered, nil)
		return f.s.Snapshot().State == StateSeeding
	})
	evs := readAll(sub)
	checkIDs(t, evs)
	if len(evs) == 0 || evs[0].Type != EventAdded || evs[0].InfoHash != f.mi.InfoHash || evs[0].Settings == nil ||
		evs[0].Settings.Dir != f.dir || evs[0].Name != "fx.bin" {
		t.Fatalf("first event: %+v", evs)
	}
	var states []string
	progress, completedAt, lastProgress := 0, -1, -1
	for i, e := range evs {
		switch e.Type {
		case EventState:
			states = append(states, e.OldState.String()+">"+e.State.String())
		case EventProgress:
			progress++
			lastProgress = i
		case EventCompleted:
			if completedAt >= 0 {
				t.Fatal("completed twice")
			}
			completedAt = i
		}
	}
	if got := states[len(states)-1]; got != "downloading>seeding" {
		t.Fatalf("states %v, want the last downloading>seeding", states)
	}
	if completedAt != len(evs)-1 || lastProgress != completedAt-1 {
		t.Fatalf("want progress then completed last: %v", types(evs))
	}
	if p := evs[lastProgress]; p.Have != f.mi.NumPieces() || p.Progress() != 1 || p.Downloaded != int64(len(f.data)) {
		t.Fatalf("final progress: have %d/%d downloaded %d", p.Have, p.NumPieces, p.Downloaded)
	}
	// The clock did not move: at most one progress event for the first
	// change, and one forced out by the completion.
	if progress < 1 || progress > 2 {
		t.Fatalf("%d progress events within one second, want 1 or 2: %v", progress, types(evs))
	}

	// A second later the rates fall: shown once the throttle allows.
	f.tick(1100 * time.Millisecond)
	f.tick(1100 * time.Millisecond)
	if evs := readAll(sub); len(evs) == 0 || evs[len(evs)-1].Type != EventProgress {
		t.Fatalf("after a second: %v", types(evs))
	}

	// A limit is a settings event; stopping and starting are states only.
	if err := f.c.SetRates(f.mi.InfoHash, 1<<20, -1); err != nil {
		t.Fatal(err)
	}
	f.sync()
	evs = readAll(sub)
	if len(evs) != 1 || evs[0].Type != EventSettings || evs[0].Settings.MaxDown != 1<<20 {
		t.Fatalf("after a rate change: %+v", evs)
	}
	if err := f.c.Stop(f.mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	f.sync()
	evs = readAll(sub)
	if len(evs) == 0 || evs[0].Type != EventState || evs[0].State != StateStopped {
		t.Fatalf("after stop: %v", types(evs))
	}
	for _, e := range evs {
		if e.Type == EventSettings || e.Type == EventCompleted {
			t.Fatalf("stop sent %v", types(evs))
		}
	}
	if err := f.c.Remove(f.mi.InfoHash, true); err != nil {
		t.Fatal(err)
	}
	f.tick(5 * time.Second)
	evs = readAll(sub)
	if len(evs) != 1 || evs[0].Type != EventRemoved || !evs[0].Deleted || evs[0].InfoHash != f.mi.InfoHash {
		t.Fatalf("after remove: %+v", evs)
	}
}

// The throttle on a synthetic session with an injected clock: the first
// change goes at once, later ones within the second wait, and the latest
// figures go out when it has passed, also with no snapshot in between (the
// trailing emit the ticker wakes the torrent for).
func TestEventsProgressThrottle(t *testing.T) {
	c := New(Config{Tick: -1, Logf: t.Logf})
	t.Cleanup(c.Close)
	s := &Session{c: c, ih: metainfo.Hash{1}}
	s.ev.live = true
	sub := c.Subscribe(0)
	defer sub.Close()
	t0 := time.Unix(1_700_000_000, 0)
	snap := func(at time.Duration, have int) *Snapshot {
		return &Snapshot{InfoHash: s.ih, State: StateDownloading, NumPieces: 10, Have: have, Size: 10, Left: int64(10 - have), At: t0.Add(at)}
	}
	prev := snap(0, 0)
	step := func(at time.Duration, have int) {
		sn := snap(at, have)
		s.emit(prev, sn, diffSnapshots(prev, sn))
		prev = sn
	}
	step(0, 1)
	step(300*time.Millisecond, 2)
	step(600*time.Millisecond, 3)
	evs := readAll(sub)
	if len(evs) != 1 || evs[0].Have != 1 {
		t.Fatalf("within a second: %+v", evs)
	}
	if w := s.progressWake(); !w.Equal(t0.Add(time.Second)) {
		t.Fatalf("the ticker is asked to wake the torrent at %v, want a second after the first", w)
	}
	s.flushProgress(prev, t0.Add(900*time.Millisecond))
	if evs := readAll(sub); len(evs) != 0 {
		t.Fatalf("trailing emit before the second passed: %+v", evs)
	}
	s.flushProgress(prev, t0.Add(time.Second))
	evs = readAll(sub)
	if len(evs) != 1 || evs[0].Have != 3 || !evs[0].Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("trailing emit: %+v", evs)
	}
	if !s.progressWake().IsZero() {
		t.Fatal("nothing held, yet a wake-up is asked for")
	}
	// Nothing new: a later tick publishes nothing.
	s.flushProgress(prev, t0.Add(5*time.Second))
	if evs := readAll(sub); len(evs) != 0 {
		t.Fatalf("no change, yet %+v", evs)
	}

	// Entering error: a state event and an error event with its message.
	bad := snap(6*time.Second, 3)
	bad.State, bad.Error = StateError, "disk gone"
	s.emit(prev, bad, diffSnapshots(prev, bad))
	evs = readAll(sub)
	if got := types(evs); len(got) != 2 || got[0] != EventState || got[1] != EventError || evs[1].Error != "disk gone" ||
		evs[0].OldState != StateDownloading {
		t.Fatalf("entering error: %+v", evs)
	}
}

// A reader gets exactly what it missed while its id is held, and one reset
// when it is not (too old, or from another run), then follows the newest.
func TestEventsHistoryAndReset(t *testing.T) {
	c := New(Config{Tick: -1, EventHistory: 8, Logf: t.Logf})
	t.Cleanup(c.Close)
	first := c.LastEventID()
	for i := range 5 {
		c.PublishGlobal(EventSettings, i)
	}
	sub := c.Subscribe(first + 2)
	evs := readAll(sub)
	sub.Close()
	if len(evs) != 3 || evs[0].ID != first+3 || evs[0].Data != 2 || evs[2].Data != 4 {
		t.Fatalf("resumed after id %d: %+v", first+2, evs)
	}
	for i := 5; i < 20; i++ {
		c.PublishGlobal(EventSettings, i)
	}
	head := c.LastEventID()
	for _, id := range []uint64{first + 2, head + 100, 1} {
		sub := c.Subscribe(id)
		evs := readAll(sub)
		if len(evs) != 1 || evs[0].Type != EventReset || evs[0].ID != head || evs[0].Data != ResetUnknownID {
			t.Fatalf("subscribing at %d (head %d): %+v", id, head, evs)
		}
		c.PublishGlobal(EventSettings, "next")
		head++
		if evs := readAll(sub); len(evs) != 1 || evs[0].Data != "next" {
			t.Fatalf("after the reset: %+v", evs)
		}
		sub.Close()
	}
	if sub := c.Subscribe(head - 8); len(readAll(sub)) != 8 {
		t.Fatal("the whole history is not served")
	} else {
		sub.Close()
	}

	// A reader the ring overtakes is reset to the newest event.
	slow := c.Subscribe(0)
	c.PublishGlobal(EventSettings, "a")
	if evs := slow.Read(make([]Event, 0, 1)); len(evs) != 1 || evs[0].Data != "a" {
		t.Fatalf("first read: %+v", evs)
	}
	for i := range 9 {
		c.PublishGlobal(EventSettings, i)
	}
	evs = readAll(slow)
	if len(evs) != 1 || evs[0].Type != EventReset || evs[0].Data != ResetBehind || evs[0].ID != c.LastEventID() {
		t.Fatalf("overtaken reader: %+v", evs)
	}
	slow.Close()
	if n := c.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

// Ids keep increasing across a restart, so an id from the last run is
// answered with a reset, not taken for one of this run's.
func TestEventsIDsAcrossRuns(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := New(Config{Tick: -1, Now: func() time.Time { return now }, Logf: t.Logf})
	for range 1000 {
		a.PublishGlobal(EventSettings, nil)
	}
	last := a.LastEventID()
	a.Close()
	now = now.Add(time.Second) // a restart takes longer than that
	b := New(Config{Tick: -1, Now: func() time.Time { return now }, Logf: t.Logf})
	defer b.Close()
	b.PublishGlobal(EventSettings, nil)
	sub := b.Subscribe(last)
	defer sub.Close()
	evs := readAll(sub)
	if b.LastEventID() <= last || len(evs) != 1 || evs[0].Type != EventReset {
		t.Fatalf("last run ended at %d, this one at %d; resuming: %+v", last, b.LastEventID(), evs)
	}
}

// Publishing never waits for subscribers and costs none of them memory:
// a thousand that never read, or that all wait, change nothing.
func TestEventsPublishNeverBlocks(t *testing.T) {
	c := New(Config{Tick: -1, EventHistory: 64, Logf: t.Logf})
	t.Cleanup(c.Close)
	var subs []*Subscription
	for range 1000 {
		subs = append(subs, c.Subscribe(0))
	}
	if a := testing.AllocsPerRun(100, func() { c.feed.publish(Event{Type: EventProgress}) }); a != 0 {
		t.Fatalf("publishing with idle subscribers allocates %.1f", a)
	}
	for _, s := range subs {
		readAll(s)
		s.Ready()
	}
	if a := testing.AllocsPerRun(100, func() {
		for _, s := range subs[:10] {
			s.Ready() // re-arm, as waiting readers do
		}
		c.feed.publish(Event{Type: EventProgress})
	}); a > 1 {
		t.Fatalf("publishing to waiting subscribers allocates %.1f, want at most one channel", a)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50_000 {
					c.PublishGlobal(EventProgress, nil)
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publishing blocked on subscribers that never read")
	}
	// A waiting reader is woken by the next event.
	w := subs[0]
	readAll(w)
	ready := w.Ready()
	go c.PublishGlobal(EventSettings, "wake")
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting reader was not woken")
	}
	if evs := readAll(w); len(evs) != 1 || evs[0].Data != "wake" {
		t.Fatalf("woken reader read %+v", evs)
	}
	for _, s := range subs {
		s.Close()
	}
}

// A torrent restored at start-up is not news: no added event; its later
// changes are.
func TestEventsRestoredTorrentNotAdded(t *testing.T) {
	f := newFixture(t, true)
	sub := f.c.Subscribe(f.c.LastEventID())
	defer sub.Close()
	ih := newFixtureOnRestored(t, f.c)
	if evs := readAll(sub); len(evs) != 0 {
		t.Fatalf("restoring sent %v", types(evs))
	}
	if err := f.c.Start(ih); err != nil {
		t.Fatal(err)
	}
	f.waitFor("a state event of the restored torrent", func() bool {
		for _, e := range readAll(sub) {
			if e.Type == EventState && e.InfoHash == ih {
				return true
			}
		}
		return false
	})
}

// newFixtureOnRestored adds a small stopped torrent to c as the persister
// brings one back at start-up.
func newFixtureOnRestored(t *testing.T, c *Client) metainfo.Hash {
	t.Helper()
	mi := &metainfo.MetaInfo{Name: "restored", PieceLength: 16 << 10, TotalLength: 100, SingleFile: true,
		Files: []metainfo.File{{Path: []string{"restored"}, Length: 100}}, Pieces: make([]metainfo.Hash, 1)}
	mi.InfoHash = metainfo.Hash{0xee}
	if _, err := c.Add(mi, AddOptions{Settings: Settings{Dir: t.TempDir(), Stopped: true}, Restored: true}); err != nil {
		t.Fatal(err)
	}
	return mi.InfoHash
}
