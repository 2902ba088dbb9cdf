package state

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
)

// A torrent whose middle file is skipped and was never created keeps its
// verified pieces across a restart: the pieces shared with the skipped file
// are trusted from the part file. The priorities come back too. Without the
// part file, the torrent is rechecked.
func TestSkippedFileTrustedFromPartFile(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	os.MkdirAll(tree, 0o755)
	r := rand.New(rand.NewPCG(1, 2))
	var data []byte
	for _, f := range []struct {
		name string
		n    int
	}{{"a.bin", 20000}, {"b.bin", 40000}, {"c.bin", 20000}} {
		b := make([]byte, f.n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		data = append(data, b...)
		os.WriteFile(filepath.Join(tree, f.name), b, 0o644)
	}
	raw, err := metainfo.Create(tree, metainfo.CreateOptions{PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	dl := t.TempDir()
	sto, err := storage.OpenWith(dl, mi, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sto.SetSkipped([]bool{false, true, false})
	have := make([]byte, 1)
	for _, p := range []int{0, 1, 3, 4} { // piece 2 lies in b.bin alone
		off := int64(p) * mi.PieceLength
		if ok, err := sto.HashAndWritePiece(p, data[off:off+mi.PieceSize(p)]); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
		have[0] |= 0x80 >> p
	}
	sto.Close()
	prio := string([]byte{resume.PriorityHigh, resume.PrioritySkip, resume.PriorityNormal})
	e := saveAndLoad(t, mi, raw, resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl, Priorities: prio},
		Have: have, NumPieces: mi.NumPieces(), MetaInfo: mi})
	if e.Resume.Priorities != prio {
		t.Fatalf("priorities %q after a restart, want %q", e.Resume.Priorities, prio)
	}
	got := TrustedHave(e, "")
	if got == nil || got.Count() != 4 || got.Test(2) {
		t.Fatalf("trusted %v, want pieces 0 1 3 4", got)
	}
	if _, err := os.Stat(filepath.Join(dl, "tree", "b.bin")); !os.IsNotExist(err) {
		t.Fatalf("the skipped file exists: %v", err)
	}
	os.Remove(filepath.Join(dl, storage.PartFileName(mi.InfoHash)))
	if TrustedHave(e, "") != nil {
		t.Fatal("pieces of a skipped file trusted without the part file")
	}
}
