package state

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine/resume"
)

// A daemon killed mid-move left a record with move_to, one file renamed,
// one at both places (copied, source not yet deleted) and the part file
// still at the source: FinishMove completes it, the record names the new
// folder, and the moved data is trusted without a recheck.
func TestFinishMoveAfterCrash(t *testing.T) {
	mi, raw, dl := fixture(t)
	a, _ := os.ReadFile(filepath.Join(dl, "tree", "a.bin"))
	b, _ := os.ReadFile(filepath.Join(dl, "tree", "b.bin"))
	parts := filepath.Join(dl, "."+mi.InfoHash.String()+".parts")
	os.WriteFile(parts, []byte("parts"), 0o644)
	dest := filepath.Join(dl, "moved", "here")
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl, Label: "keep"}, MoveTo: dest,
		Have: full(mi.NumPieces()), NumPieces: mi.NumPieces(), Uploaded: 77,
		Added: time.Unix(1_700_000_000, 0).UTC(), MetaInfo: mi}

	dir := t.TempDir()
	st, err := Open(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveTorrent(mi, raw); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveDurably(r); err != nil {
		t.Fatal(err)
	}
	st.Close() // the crash: the move had begun

	os.MkdirAll(filepath.Join(dest, "tree"), 0o755)
	if err := os.Rename(filepath.Join(dl, "tree", "a.bin"), filepath.Join(dest, "tree", "a.bin")); err != nil {
		t.Fatal(err)
	}
	copyWithTimes(t, filepath.Join(dl, "tree", "b.bin"), filepath.Join(dest, "tree", "b.bin"))

	st, err = Open(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	entries, errs := st.Load()
	if len(errs) > 0 || len(entries) != 1 || entries[0].Resume.MoveTo != dest {
		t.Fatalf("load: %d entries, %v, move_to %q", len(entries), errs, entries[0].Resume.MoveTo)
	}
	e := entries[0]
	if err := st.FinishMove(&e, dl); err != nil {
		t.Fatalf("FinishMove: %v", err)
	}
	st.Close()
	if e.Resume.Dir != dest || e.Resume.MoveTo != "" || e.Resume.Label != "keep" || e.Resume.Uploaded != 77 {
		t.Fatalf("entry after the move: %+v", e.Resume)
	}
	for name, want := range map[string][]byte{"tree/a.bin": a, "tree/b.bin": b, "." + mi.InfoHash.String() + ".parts": []byte("parts")} {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s at the destination: %v", name, err)
		}
	}
	for _, gone := range []string{filepath.Join(dl, "tree"), parts} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Fatalf("%s still at the source (%v)", gone, err)
		}
	}
	if have := TrustedHave(e, dl); have == nil || have.Count() != uint(mi.NumPieces()) {
		t.Fatal("moved data not trusted: it would be rechecked")
	}

	// What the next start-up reads: the new folder, no move pending.
	st, _ = Open(dir, t.Logf)
	defer st.Close()
	entries, _ = st.Load()
	if got := entries[0].Resume; got.Dir != dest || got.MoveTo != "" {
		t.Fatalf("record after the move: dir %q move_to %q", got.Dir, got.MoveTo)
	}
	if have := TrustedHave(entries[0], dl); have == nil || have.Count() != uint(mi.NumPieces()) {
		t.Fatal("moved data not trusted after a second restart")
	}
}

// A move whose files had all been moved before the crash (only the final
// record was missing) finishes by rewriting the record alone.
func TestFinishMoveAlreadyMoved(t *testing.T) {
	mi, raw, dl := fixture(t)
	dest := filepath.Join(dl, "b")
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl}, MoveTo: dest,
		Have: full(mi.NumPieces()), NumPieces: mi.NumPieces(), MetaInfo: mi}
	e := saveAndLoad(t, mi, raw, r)
	os.MkdirAll(dest, 0o755)
	if err := os.Rename(filepath.Join(dl, "tree"), filepath.Join(dest, "tree")); err != nil {
		t.Fatal(err)
	}
	st, _ := Open(t.TempDir(), t.Logf)
	defer st.Close()
	st.SaveTorrent(mi, raw)
	if err := st.FinishMove(&e, dl); err != nil {
		t.Fatal(err)
	}
	if e.Resume.Dir != dest || TrustedHave(e, dl) == nil {
		t.Fatalf("dir %q, trusted %v", e.Resume.Dir, TrustedHave(e, dl) != nil)
	}
}

// A torrent removed while its move ran is not brought back by the move's
// last record.
func TestSaveDurablyAfterRemove(t *testing.T) {
	mi, raw, dl := fixture(t)
	st, _ := Open(t.TempDir(), t.Logf)
	defer st.Close()
	st.SaveTorrent(mi, raw)
	st.Remove(mi.InfoHash)
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl}}
	if err := st.SaveDurably(r); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if names, _ := filepath.Glob(filepath.Join(st.Dir(), "*.resume")); len(names) != 0 {
		t.Fatalf("removed torrent's record written back: %v", names)
	}
}

func copyWithTimes(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(from)
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(to, fi.ModTime(), fi.ModTime())
}
