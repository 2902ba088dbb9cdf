package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/metainfo"
)

// threeFiles: pieces of 1000 bytes straddle both boundaries (at 1500 and
// 4200), and the middle file's own pieces (2, 3) lie in it alone.
var threeFiles = []tfile{
	{path: "a.bin", length: 1500},
	{path: "b.bin", length: 2700},
	{path: "c.bin", length: 1300},
}

// wantedPieces are the pieces touching a file not skipped.
func wantedPieces(mi *metainfo.MetaInfo, skip []bool) []int {
	var out []int
	for p := range mi.NumPieces() {
		for _, sp := range mi.PieceSpans(p) {
			if !sp.Pad && !skip[sp.File] {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func TestPartFileKeepsSkippedBytes(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "t", 1000, threeFiles, 1)
	mi.InfoHash = metainfo.Hash{0xab}
	s := openT(t, root, mi, Options{})
	skip := []bool{false, true, false}
	s.SetSkipped(skip)
	if got := boundaryPieces(mi); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("boundary pieces %v, want [1 4]", got)
	}
	wanted := wantedPieces(mi, skip)
	for _, p := range wanted {
		if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
	}
	mid := filepath.Join(root, "t", "b.bin")
	if _, err := os.Stat(mid); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("skipped file exists: %v", err)
	}
	part := filepath.Join(root, PartFileName(mi.InfoHash))
	if fi, err := os.Stat(part); err != nil || fi.Size() != 2*1000 {
		t.Fatalf("part file: %v, %v", fi, err)
	}
	for _, p := range wanted {
		if ok, err := s.HashPiece(p); !ok || err != nil {
			t.Fatalf("piece %d reads back: %v %v", p, ok, err)
		}
	}
	if ok, err := s.HashPiece(2); ok || err != nil {
		t.Fatalf("a piece only in the skipped file: %v %v, want absent", ok, err)
	}
	if _, err := s.HashAndWritePiece(2, pieceData(mi, data, 2)); !errors.Is(err, ErrSkipped) {
		t.Fatalf("writing a piece only in the skipped file: %v, want ErrSkipped", err)
	}
	buf := make([]byte, 100)
	if err := s.ReadBlockCached(1, 450, buf); err != nil || !bytes.Equal(buf, data[1450:1550]) {
		t.Fatalf("cached read across the boundary: %v", err)
	}

	// Wanted again: its bytes move out of the part file; the rest follows.
	s.SetSkipped(nil)
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(mid)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:500], data[1500:2000]) || !bytes.Equal(got[2500:], data[4000:4200]) {
		t.Fatal("the part file's bytes did not move into the file")
	}
	for _, p := range []int{2, 3} {
		if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
	}
	for i, f := range threeFiles {
		got, err := os.ReadFile(filepath.Join(root, "t", f.path))
		off := mi.Files[i].Offset
		if err != nil || !bytes.Equal(got, data[off:off+f.length]) {
			t.Fatalf("%s differs: %v", f.path, err)
		}
	}
	// A fresh storage (a restart) reads every piece from the files.
	s2 := openT(t, root, mi, Options{})
	for p := range mi.NumPieces() {
		if ok, err := s2.HashPiece(p); !ok || err != nil {
			t.Fatalf("after restart piece %d: %v %v", p, ok, err)
		}
	}
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("part file left after Remove: %v", err)
	}
}

// A file downloaded and then skipped keeps its data where it is, usable;
// a restart with it skipped still reads it there.
func TestSkippingADownloadedFileKeepsIt(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "t", 1000, threeFiles, 2)
	s := openT(t, root, mi, Options{})
	for p := range mi.NumPieces() {
		if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
	}
	s.SetSkipped([]bool{false, true, false})
	// A wanted boundary piece written again goes to the existing file.
	if ok, err := s.HashAndWritePiece(1, pieceData(mi, data, 1)); !ok || err != nil {
		t.Fatalf("piece 1: %v %v", ok, err)
	}
	s2 := openT(t, root, mi, Options{})
	s2.SetSkipped([]bool{false, true, false})
	for p := range mi.NumPieces() {
		if ok, err := s2.HashPiece(p); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, PartFileName(mi.InfoHash))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a part file was made for a file that exists: %v", err)
	}
}

// A skipped zero-length file is not created; wanted again, it is.
func TestSkippedEmptyFile(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "t", 1000, []tfile{{path: "a", length: 1200}, {path: "e", length: 0}, {path: "c", length: 900}}, 3)
	s := openT(t, root, mi, Options{})
	s.SetSkipped([]bool{false, true, false})
	for p := range mi.NumPieces() {
		if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
			t.Fatalf("piece %d: %v %v", p, ok, err)
		}
	}
	if err := s.EnsureEmptyFiles(); err != nil {
		t.Fatal(err)
	}
	e := filepath.Join(root, "t", "e")
	if _, err := os.Stat(e); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("skipped empty file created: %v", err)
	}
	s.SetSkipped(nil)
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e); err != nil {
		t.Fatalf("empty file wanted again: %v", err)
	}
}

// After a restart nothing has looked at the skipped file yet: wanted again,
// its bytes still come out of the part file, by Settle or by the first
// write into it.
func TestWantedAgainAfterRestart(t *testing.T) {
	for _, settle := range []bool{true, false} {
		root := t.TempDir()
		mi, data := newTorrent(t, "t", 1000, threeFiles, 4)
		skip := []bool{false, true, false}
		s := openT(t, root, mi, Options{})
		s.SetSkipped(skip)
		for _, p := range wantedPieces(mi, skip) {
			if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
				t.Fatalf("piece %d: %v %v", p, ok, err)
			}
		}
		s.Close()
		s = openT(t, root, mi, Options{})
		s.SetSkipped(skip)
		s.SetSkipped(nil)
		if settle {
			if err := s.Settle(); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []int{2, 3} {
			if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
				t.Fatalf("piece %d: %v %v", p, ok, err)
			}
		}
		got, err := os.ReadFile(filepath.Join(root, "t", "b.bin"))
		if err != nil || !bytes.Equal(got, data[1500:4200]) {
			t.Fatalf("settle=%v: b.bin differs: %v", settle, err)
		}
	}
}
