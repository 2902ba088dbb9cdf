package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/wire"
)

// A seed that reaches its ratio limit stops, says why, and stays stopped
// across a restart (Stopped is saved); starting it again without raising
// the limit stops it again.
func TestRatioLimitStopsSeeding(t *testing.T) {
	f := newFixture(t, true)
	size := f.mi.TotalLength
	// Ratio of a torrent that downloaded nothing counts against its size:
	// one 16 KiB block of 164 KiB is 0.1.
	if err := f.c.SetRatioLimit(f.mi.InfoHash, 0.09); err != nil {
		t.Fatal(err)
	}
	f.tick(time.Second)
	if sn := f.s.Snapshot(); sn.State != StateSeeding {
		t.Fatalf("state %s before any upload, want seeding", sn.State)
	}
	sub := f.c.Subscribe(0)
	defer sub.Close()
	fc, h := f.attach(1)
	f.deliver(h, wire.Message{Type: wire.Interested})
	f.deliver(h, wire.Message{Type: wire.Request, Index: 2, Begin: 0, Length: 16384})
	f.waitFor("the block sent", func() bool { return fc.sentTypes(t)[wire.Piece] == 1 })
	f.waitFor("the limit to stop it", func() bool {
		f.tick(time.Second)
		sn := f.s.Snapshot()
		return sn.State == StateStopped
	})
	sn := f.s.Snapshot()
	if !sn.Stopped || sn.LimitReached != "ratio limit reached" || !fc.isClosed() {
		t.Fatalf("stopped %v, limit %q, peer closed %v", sn.Stopped, sn.LimitReached, fc.isClosed())
	}
	if r := Ratio(sn.TotalUploaded, sn.TotalDownloaded, size); r < 0.09 {
		t.Fatalf("stopped at ratio %.3f, under its limit", r)
	}
	var limits []Event
	for _, ev := range sub.Read(nil) {
		if ev.Type == EventLimit {
			limits = append(limits, ev)
		}
	}
	if len(limits) != 1 || limits[0].Error != "ratio limit reached" || limits[0].Data != "stop" || limits[0].InfoHash != f.mi.InfoHash {
		t.Fatalf("limit events %+v, want one saying ratio limit reached, stop", limits)
	}
	if err := f.c.Start(f.mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	f.waitFor("a start past the limit to stop again", func() bool {
		f.tick(time.Second)
		sn := f.s.Snapshot()
		return sn.State == StateStopped && sn.LimitReached != ""
	})
}

// The global seed-time limit with the remove action removes the torrent
// after that much seeding, keeping its data; the torrent's own "none"
// overrides the global limit.
func TestSeedTimeLimitRemoves(t *testing.T) {
	f := newFixture(t, true)
	if err := f.c.SetGlobal(Global{SeedTimeLimit: 2, LimitAction: resume.LimitRemove}, false); err != nil {
		t.Fatal(err)
	}
	if err := f.c.SetSeedTimeLimit(f.mi.InfoHash, -1); err != nil { // none
		t.Fatal(err)
	}
	f.tick(3 * time.Minute)
	if f.c.Session(f.mi.InfoHash) == nil {
		t.Fatal("removed although its own limit is none")
	}
	if err := f.c.SetSeedTimeLimit(f.mi.InfoHash, 0); err != nil { // follow the global one
		t.Fatal(err)
	}
	f.tick(time.Second)
	f.waitFor("the torrent removed", func() bool { return f.c.Session(f.mi.InfoHash) == nil })
	if _, err := os.Stat(filepath.Join(f.dir, "fx.bin")); err != nil {
		t.Fatalf("remove action deleted the data: %v", err)
	}
}

// The seed clock counts only time in state seeding, over runs.
func TestSeedClock(t *testing.T) {
	var c seedClock
	t0 := time.Unix(1000, 0)
	c.enter(t0)
	c.account(t0.Add(10 * time.Second))
	c.leave(t0.Add(15 * time.Second))
	c.account(t0.Add(time.Hour)) // not seeding: nothing counted
	c.enter(t0.Add(2 * time.Hour))
	if got := c.total(t0.Add(2*time.Hour + 5*time.Second)); got != 20*time.Second {
		t.Fatalf("total %v, want 20s", got)
	}
}
