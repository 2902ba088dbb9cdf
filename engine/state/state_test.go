package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// fixture: a two-file torrent fully present on disk.
func fixture(t *testing.T) (*metainfo.MetaInfo, []byte, string) {
	t.Helper()
	dl := t.TempDir()
	src := filepath.Join(dl, "tree")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.bin"), make([]byte, 100000), 0o644)
	os.WriteFile(filepath.Join(src, "b.bin"), []byte("hello world"), 0o644)
	raw, err := metainfo.Create(src, metainfo.CreateOptions{PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return mi, raw, dl
}

func saveAndLoad(t *testing.T, mi *metainfo.MetaInfo, raw []byte, r resume.Record) Entry {
	t.Helper()
	st, err := Open(t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveTorrent(mi, raw); err != nil {
		t.Fatal(err)
	}
	st.Save(r)
	st.Close()
	st2, _ := Open(st.Dir(), t.Logf)
	defer st2.Close()
	entries, errs := st2.Load()
	if len(errs) > 0 || len(entries) != 1 {
		t.Fatalf("load: %v entries, errors %v", len(entries), errs)
	}
	return entries[0]
}

func full(n int) []byte {
	b := make([]byte, (n+7)/8)
	for i := range n {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

func TestRoundTripAndTrust(t *testing.T) {
	mi, raw, dl := fixture(t)
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl, Stopped: true, MaxDown: 5000, MaxUp: 7000, Sequential: true},
		Have: full(mi.NumPieces()), NumPieces: mi.NumPieces(), Downloaded: 123, Uploaded: 456,
		Added: time.Unix(1_700_000_000, 0).UTC(), MetaInfo: mi}
	e := saveAndLoad(t, mi, raw, r)
	r.MetaInfo = nil
	if e.MetaInfo.InfoHash != mi.InfoHash || !e.HasResume {
		t.Fatal("torrent or resume record lost")
	}
	got := e.Resume
	if got.Dir != r.Dir || !got.Stopped || got.MaxDown != 5000 || got.MaxUp != 7000 || !got.Sequential ||
		got.Downloaded != 123 || got.Uploaded != 456 || !got.Added.Equal(r.Added) {
		t.Fatalf("resume %+v, want %+v", got, r)
	}
	if have := TrustedHave(e, ""); have == nil || have.Count() != uint(mi.NumPieces()) {
		t.Fatal("intact complete data not trusted")
	}
	// Someone rewrites a complete file: its mtime changes, so recheck.
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dl, "tree", "b.bin"), later, later)
	if TrustedHave(e, "") != nil {
		t.Fatal("complete file with a new mtime still trusted")
	}
	// A truncated file: recheck.
	os.Truncate(filepath.Join(dl, "tree", "a.bin"), 5)
	if TrustedHave(e, "") != nil {
		t.Fatal("truncated file trusted")
	}
}

func TestPartialDownloadTrustedAfterCrash(t *testing.T) {
	mi, raw, dl := fixture(t)
	have := make([]byte, (mi.NumPieces()+7)/8)
	have[0] = 0xC0 // pieces 0 and 1 only: a.bin is still downloading
	e := saveAndLoad(t, mi, raw, resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl}, Have: have, NumPieces: mi.NumPieces(), MetaInfo: mi})
	// More pieces were written after the record (the crash lost them):
	// a.bin's mtime moves on; its verified pieces stay trusted.
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dl, "tree", "a.bin"), later, later)
	got := TrustedHave(e, "")
	if got == nil || got.Count() != 2 || !got.Test(0) || !got.Test(1) {
		t.Fatalf("trusted %v, want pieces 0 and 1", got)
	}
}

func TestRemoveAndCorrupt(t *testing.T) {
	mi, raw, _ := fixture(t)
	st, _ := Open(t.TempDir(), t.Logf)
	st.SaveTorrent(mi, raw)
	st.Save(resume.Record{InfoHash: mi.InfoHash, NumPieces: mi.NumPieces()})
	st.Remove(mi.InfoHash)
	os.WriteFile(filepath.Join(st.Dir(), "0000000000000000000000000000000000000000.torrent"), []byte("garbage"), 0o600)
	st.Close()
	entries, errs := st.Load()
	if len(entries) != 0 || len(errs) != 1 {
		t.Fatalf("after remove: %d entries, %d errors (want 0 and the garbage one)", len(entries), len(errs))
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), mi.InfoHash.String()+".resume")); !os.IsNotExist(err) {
		t.Fatal("resume record survived Remove")
	}
}

func TestEncodeTorrentKeepsInfoHash(t *testing.T) {
	for _, name := range []string{"lt-hybrid.torrent", "mk-multi.torrent", "unsorted.torrent"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "metainfo", "testdata", "torrents", name))
		if err != nil {
			t.Fatal(err)
		}
		mi, err := metainfo.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := EncodeTorrent(mi)
		if err != nil {
			t.Fatal(err)
		}
		back, err := metainfo.Parse(b)
		if err != nil {
			t.Fatalf("%s: re-encoded torrent does not parse: %v", name, err)
		}
		if back.InfoHash != mi.InfoHash || len(back.Trackers) != len(mi.Trackers) || len(back.WebSeeds) != len(mi.WebSeeds) {
			t.Fatalf("%s: re-encoded torrent differs", name)
		}
	}
}
