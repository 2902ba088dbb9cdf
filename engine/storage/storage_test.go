package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

func TestWriteReadMultiFile(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 1)
	s := openT(t, root, mi, Options{})
	writeAllBlocks(t, s, data, 256, 2)

	// Every byte must be back, whether read as whole pieces or as blocks at
	// arbitrary offsets that straddle file boundaries.
	for p := range mi.NumPieces() {
		got := make([]byte, mi.PieceSize(p))
		if err := s.ReadBlock(p, 0, got); err != nil {
			t.Fatalf("ReadBlock(%d): %v", p, err)
		}
		if !bytes.Equal(got, pieceData(mi, data, p)) {
			t.Fatalf("piece %d differs after read-back", p)
		}
		ok, err := s.HashPiece(p)
		if err != nil || !ok {
			t.Fatalf("HashPiece(%d) = %v, %v; want true", p, ok, err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 200 {
		p := rng.IntN(mi.NumPieces())
		size := mi.PieceSize(p)
		begin := rng.Int64N(size)
		n := rng.Int64N(size - begin + 1)
		got := make([]byte, n)
		if err := s.ReadBlock(p, begin, got); err != nil {
			t.Fatalf("ReadBlock(%d, %d, %d): %v", p, begin, n, err)
		}
		if !bytes.Equal(got, pieceData(mi, data, p)[begin:begin+n]) {
			t.Fatalf("block (%d, %d, %d) differs", p, begin, n)
		}
	}

	// The files themselves hold the right bytes, laid out as root/Name/path.
	for _, f := range mi.Files {
		p := filepath.Join(append([]string{root, "multi"}, f.Path...)...)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		if !bytes.Equal(got, data[f.Offset:f.Offset+f.Length]) {
			t.Fatalf("%s has wrong contents", p)
		}
	}
}

func TestSingleFileLayout(t *testing.T) {
	root := t.TempDir()
	mi, data := singleFile(t, "movie.mkv", 512, 3000, 4)
	s := openT(t, root, mi, Options{})
	writeAllBlocks(t, s, data, 200, 5)
	got, err := os.ReadFile(filepath.Join(root, "movie.mkv"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("root/Name: err=%v, equal=%v", err, bytes.Equal(got, data))
	}
	if tree := listTree(t, root); !slices.Equal(tree, []string{"movie.mkv"}) {
		t.Fatalf("disk holds %v, want only movie.mkv", tree)
	}
}

func TestCorruptByteFailsExactlyOnePiece(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 6)
	s := openT(t, root, mi, Options{})
	writeAllBlocks(t, s, data, 256, 7)

	// Flip one byte in the middle of sub/deeper/c.bin through the file
	// system, as bit rot or another program would.
	f := mi.Files[3]
	at := int64(1500)
	path := filepath.Join(root, "multi", "sub", "deeper", "c.bin")
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte{data[f.Offset+at] ^ 0xff}, at); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	bad := int((f.Offset + at) / mi.PieceLength)
	for p := range mi.NumPieces() {
		ok, err := s.HashPiece(p)
		if err != nil {
			t.Fatalf("HashPiece(%d): %v", p, err)
		}
		if ok != (p != bad) {
			t.Errorf("HashPiece(%d) = %v, corrupted piece is %d", p, ok, bad)
		}
	}
}

func TestPadFilesNeverTouchDisk(t *testing.T) {
	root := t.TempDir()
	files := []tfile{
		{path: "a.bin", length: 700},
		{path: ".pad/324", length: 324, pad: true},
		{path: "b.bin", length: 1024},
		{path: "c.bin", length: 100},
		{path: ".pad/924", length: 924, pad: true},
		{path: "d.bin", length: 50},
	}
	mi, data := newTorrent(t, "padded", 1024, files, 8)
	s := openT(t, root, mi, Options{})
	for p := range mi.NumPieces() {
		// Half through the in-memory path, half block by block.
		if p%2 == 0 {
			ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p))
			if err != nil || !ok {
				t.Fatalf("HashAndWritePiece(%d) = %v, %v", p, ok, err)
			}
			continue
		}
		pd := pieceData(mi, data, p)
		for b := 0; b < len(pd); b += 100 {
			if err := s.WriteBlock(p, int64(b), pd[b:min(b+100, len(pd))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"padded", "padded/a.bin", "padded/b.bin", "padded/c.bin", "padded/d.bin"}
	if tree := listTree(t, root); !slices.Equal(tree, want) {
		t.Fatalf("disk holds %v, want %v (no pad files)", tree, want)
	}
	// Piece 0 ends with the 324-byte pad: it reads back as zeros.
	got := make([]byte, 324)
	for i := range got {
		got[i] = 0xAA
	}
	if err := s.ReadBlock(0, 700, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, make([]byte, 324)) {
		t.Fatal("pad range did not read as zeros")
	}
	for p := range mi.NumPieces() {
		if ok, err := s.HashPiece(p); !ok || err != nil {
			t.Fatalf("HashPiece(%d) = %v, %v", p, ok, err)
		}
	}
}

func TestHashAndWriteRejectsBadPiece(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 9)
	s := openT(t, root, mi, Options{})
	bad := bytes.Clone(pieceData(mi, data, 2))
	bad[10] ^= 1
	ok, err := s.HashAndWritePiece(2, bad)
	if ok || err != nil {
		t.Fatalf("bad piece: ok=%v err=%v, want false, nil", ok, err)
	}
	if tree := listTree(t, root); len(tree) != 0 {
		t.Fatalf("a rejected piece created %v", tree)
	}
	if _, err := s.HashAndWritePiece(2, bad[:10]); !errors.Is(err, ErrRange) {
		t.Fatalf("short piece: err=%v, want ErrRange", err)
	}
}

func TestLazyCreation(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 10)
	s := openT(t, root, mi, Options{})
	if tree := listTree(t, root); len(tree) != 0 {
		t.Fatalf("Open created %v", tree)
	}
	if err := s.ReadBlock(0, 0, make([]byte, 10)); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("read before write: %v, want ErrNotPresent", err)
	}
	if ok, err := s.HashPiece(0); ok || err != nil {
		t.Fatalf("HashPiece before write = %v, %v; want false, nil", ok, err)
	}
	s.FileStats()
	if tree := listTree(t, root); len(tree) != 0 {
		t.Fatalf("reads created %v", tree)
	}

	// One block inside a.bin creates a.bin (at full, sparse length) and the
	// empty file, nothing else.
	if err := s.WriteBlock(1, 0, pieceData(mi, data, 1)[:100]); err != nil {
		t.Fatal(err)
	}
	want := []string{"multi", "multi/a.bin", "multi/empty.txt"}
	if tree := listTree(t, root); !slices.Equal(tree, want) {
		t.Fatalf("after one write disk holds %v, want %v", tree, want)
	}
	fi, err := os.Stat(filepath.Join(root, "multi", "a.bin"))
	if err != nil || fi.Size() != 2500 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("a.bin: %v, %v", fi, err)
	}
	// Bytes of a.bin not yet written are a hole: the piece is not intact.
	if ok, _ := s.HashPiece(0); ok {
		t.Fatal("unwritten piece hashed as intact")
	}
}

func TestRemoveDeletesOnlyTorrentFiles(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 11)
	s := openT(t, root, mi, Options{})
	writeAllBlocks(t, s, data, 500, 12)
	// Unrelated files: next to the torrent, and inside one of its folders.
	mustWrite(t, filepath.Join(root, "other.txt"))
	mustWrite(t, filepath.Join(root, "multi", "sub", "notes.txt"))

	if err := s.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	want := []string{"multi", "multi/sub", "multi/sub/notes.txt", "other.txt"}
	if tree := listTree(t, root); !slices.Equal(tree, want) {
		t.Fatalf("after Remove disk holds %v, want %v", tree, want)
	}
	if err := s.WriteBlock(0, 0, []byte{1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Remove: %v, want ErrClosed", err)
	}

	// Without foreign files the torrent folder goes too, root stays.
	os.Remove(filepath.Join(root, "multi", "sub", "notes.txt"))
	s2 := openT(t, root, mi, Options{})
	writeAllBlocks(t, s2, data, 500, 13)
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	if tree := listTree(t, root); !slices.Equal(tree, []string{"other.txt"}) {
		t.Fatalf("after second Remove disk holds %v", tree)
	}

	// A single-file torrent removes its file and never root.
	sm, sdata := singleFile(t, "one.iso", 256, 1000, 14)
	s3 := openT(t, root, sm, Options{})
	writeAllBlocks(t, s3, sdata, 256, 15)
	if err := s3.Remove(); err != nil {
		t.Fatal(err)
	}
	if tree := listTree(t, root); !slices.Equal(tree, []string{"other.txt"}) {
		t.Fatalf("after single-file Remove disk holds %v", tree)
	}
}

func mustWrite(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRangeChecks(t *testing.T) {
	mi, _ := newTorrent(t, "multi", 1000, mixedFiles, 16)
	s := openT(t, t.TempDir(), mi, Options{})
	last := mi.NumPieces() - 1
	lastSize := mi.PieceSize(last)
	cases := []struct {
		piece int
		begin int64
		n     int
	}{
		{-1, 0, 1}, {mi.NumPieces(), 0, 1}, {0, -1, 1}, {0, 1000, 1}, {0, 999, 2},
		{last, lastSize - 1, 2}, {0, 1 << 62, 1}, {0, 1001, 0},
	}
	for _, c := range cases {
		if err := s.ReadBlock(c.piece, c.begin, make([]byte, c.n)); !errors.Is(err, ErrRange) {
			t.Errorf("ReadBlock(%d, %d, %d) = %v, want ErrRange", c.piece, c.begin, c.n, err)
		}
		if err := s.WriteBlock(c.piece, c.begin, make([]byte, c.n)); !errors.Is(err, ErrRange) {
			t.Errorf("WriteBlock(%d, %d, %d) = %v, want ErrRange", c.piece, c.begin, c.n, err)
		}
	}
	if _, err := s.HashPiece(mi.NumPieces()); !errors.Is(err, ErrRange) {
		t.Errorf("HashPiece past end: %v", err)
	}
}

func TestOpenRejectsBadLayouts(t *testing.T) {
	root := t.TempDir()
	for _, bad := range [][]string{{".."}, {"a", "..", "b"}, {"a/b"}, {""}, {"."}, {"x\x00"}} {
		mi, _ := newTorrent(t, "t", 100, []tfile{{path: "ok", length: 10}}, 17)
		mi.Files[0].Path = bad
		if _, err := Open(root, mi); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("path %q: %v, want ErrUnsafePath", bad, err)
		}
	}
	mi, _ := newTorrent(t, "..", 100, []tfile{{path: "ok", length: 10}}, 18)
	if _, err := Open(root, mi); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("name \"..\": %v, want ErrUnsafePath", err)
	}
	mi, _ = newTorrent(t, "t", 100, mixedFiles, 19)
	mi.Files[2].Offset++
	if _, err := Open(root, mi); !errors.Is(err, ErrLayout) {
		t.Errorf("bad offset: %v, want ErrLayout", err)
	}
	mi, _ = newTorrent(t, "t", 100, mixedFiles, 20)
	mi.Pieces = mi.Pieces[1:]
	if _, err := Open(root, mi); !errors.Is(err, ErrLayout) {
		t.Errorf("missing piece hash: %v, want ErrLayout", err)
	}
}

func TestFileStatsAndIntact(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 21)
	s := openT(t, root, mi, Options{})
	before := s.FileStats()
	for _, st := range before {
		if st.Size != -1 {
			t.Fatalf("%s reported present before any write", st.Path)
		}
	}
	writeAllBlocks(t, s, data, 1000, 22)
	saved := s.FileStats()
	if len(saved) != 5 || saved[3].Path != filepath.Join("multi", "sub", "deeper", "c.bin") || saved[3].Size != 3333 {
		t.Fatalf("FileStats = %+v", saved)
	}
	if !s.FilesLookIntact(saved) {
		t.Fatal("untouched files do not look intact")
	}
	if s.FilesLookIntact(before) {
		t.Fatal("stats from before the download look intact")
	}
	// Someone touches a file: the fast path must refuse.
	p := filepath.Join(root, "multi", "d.bin")
	if err := os.Chtimes(p, time.Now(), saved[4].ModTime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.FilesLookIntact(saved) {
		t.Fatal("a file with a new mtime looks intact")
	}
}

func TestZeroLengthTorrentFilesOnly(t *testing.T) {
	// A torrent whose only file is empty at the end still works.
	mi := &metainfo.MetaInfo{Name: "e", PieceLength: 16, Files: []metainfo.File{
		{Path: []string{"x"}, Length: 4}, {Path: []string{"z"}, Length: 0, Offset: 4},
	}, TotalLength: 4}
	mi.Pieces = []metainfo.Hash{{}}
	root := t.TempDir()
	s := openT(t, root, mi, Options{})
	if err := s.WriteBlock(0, 0, []byte("abcd")); err != nil {
		t.Fatal(err)
	}
	if tree := listTree(t, root); !slices.Equal(tree, []string{"e", "e/x", "e/z"}) {
		t.Fatalf("disk holds %v", tree)
	}
}
