package engine

import (
	"testing"

	"crypto/sha1"

	"gotorrentserver/metainfo"
)

// A reader that remembers a version learns exactly which torrents changed
// since, and in what, without reading the others.
func TestChangesSince(t *testing.T) {
	f := newFixture(t, true)
	f.sync()
	v := f.c.Version()
	if ch := f.c.ChangesSince(v); len(ch.Changed) != 0 || len(ch.Removed) != 0 || ch.Reset {
		t.Fatalf("nothing happened, yet %+v", ch)
	}
	if ch := f.c.ChangesSince(0); len(ch.Changed) != 1 || ch.Changed[0].ChangedSince(0) != ChangeAll {
		t.Fatalf("from 0 a reader gets every torrent whole: %+v", ch)
	}

	if err := f.c.SetRates(f.mi.InfoHash, 1<<20, -1); err != nil {
		t.Fatal(err)
	}
	f.sync()
	ch := f.c.ChangesSince(v)
	if len(ch.Changed) != 1 || ch.Version <= v {
		t.Fatalf("after a rate change: %+v", ch)
	}
	if got := ch.Changed[0].ChangedSince(v); got != ChangeSettings {
		t.Fatalf("a limit changed, reported %b, want settings only", got)
	}

	v = ch.Version
	f.attach(1)
	f.tick(0) // the API's view follows the session's clock
	got := f.s.Snapshot().ChangedSince(v)
	if got&ChangePeers == 0 || got&(ChangeState|ChangeSettings|ChangeProgress) != 0 {
		t.Fatalf("a peer attached, reported %b", got)
	}

	v = f.c.Version()
	other := newFixtureOn(t, f.c, "other")
	f.sync()
	if err := f.c.Remove(f.mi.InfoHash, false); err != nil {
		t.Fatal(err)
	}
	ch = f.c.ChangesSince(v)
	if len(ch.Removed) != 1 || ch.Removed[0] != f.mi.InfoHash {
		t.Fatalf("removal not reported: %+v", ch.Removed)
	}
	found := false
	for _, sn := range ch.Changed {
		found = found || sn.InfoHash == other
	}
	if !found {
		t.Fatal("the added torrent is not among the changes")
	}
}

// A reader further behind than the removals kept is told to start over.
func TestChangesResetWhenFarBehind(t *testing.T) {
	var r removals
	for i := range maxRemovals + 5 {
		r.add(uint64(10+i), [20]byte{byte(i), byte(i >> 8)})
	}
	if _, ok := r.since(3); ok {
		t.Fatal("removals were forgotten, yet the reader is not reset")
	}
	ihs, ok := r.since(uint64(10 + maxRemovals))
	if !ok || len(ihs) != 4 {
		t.Fatalf("recent removals: %d, ok %v", len(ihs), ok)
	}
}

// newFixtureOn adds a small stopped torrent named name to c.
func newFixtureOn(t *testing.T, c *Client, name string) metainfo.Hash {
	t.Helper()
	mi := &metainfo.MetaInfo{Name: name, PieceLength: 16 << 10, TotalLength: 100, SingleFile: true,
		Files: []metainfo.File{{Path: []string{name}, Length: 100}}, Pieces: make([]metainfo.Hash, 1)}
	mi.InfoHash = sha1.Sum([]byte(name))
	if _, err := c.Add(mi, AddOptions{Settings: Settings{Dir: t.TempDir(), Stopped: true}}); err != nil {
		t.Fatal(err)
	}
	return mi.InfoHash
}
