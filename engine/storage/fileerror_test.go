package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// assertFileError checks err names file rel (slash-separated, relative to
// the download folder) and wraps want, as the engine will show it.
func assertFileError(t *testing.T, what string, err error, rel string, want error) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, want) {
		t.Fatalf("%s: %v, want a *FileError wrapping %v", what, err, want)
	}
	if fe.Path != filepath.FromSlash(rel) {
		t.Fatalf("%s: error names %q, want %q", what, fe.Path, rel)
	}
}

func TestMissingDataNamesTheFile(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 110)
	writeAllBlocks(t, openT(t, root, mi, Options{}), data, 1000, 111)
	dir := filepath.Join(root, "multi")
	if err := os.Remove(filepath.Join(dir, "sub", "deeper", "c.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "d.bin"), 100); err != nil {
		t.Fatal(err)
	}

	// A fresh Storage, as after a restart: nothing cached.
	s := openT(t, root, mi, Options{})
	// Piece 3 lies in sub/deeper/c.bin, piece 6 in the tail of d.bin.
	assertFileError(t, "missing file", s.ReadBlock(3, 0, make([]byte, 10)), "multi/sub/deeper/c.bin", ErrNotPresent)
	assertFileError(t, "short file", s.ReadBlock(6, 0, make([]byte, 10)), "multi/d.bin", ErrNotPresent)
	for _, p := range []int{3, 6} {
		if ok, err := s.HashPiece(p); ok || err != nil {
			t.Fatalf("HashPiece(%d) = %v, %v; want false, nil", p, ok, err)
		}
	}
	if ok, err := s.HashPiece(0); !ok || err != nil {
		t.Fatalf("HashPiece(0) of an intact file = %v, %v", ok, err)
	}

	smi, _ := singleFile(t, "movie.mkv", 512, 3000, 112)
	s2 := openT(t, root, smi, Options{})
	assertFileError(t, "single-file", s2.ReadBlock(0, 0, make([]byte, 10)), "movie.mkv", ErrNotPresent)
}

func TestFileChangedWhileOpen(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 113)
	fc := NewFileCache(16)
	fc.liveEvery = 0 // check on every use instead of once a second
	s := openT(t, root, mi, Options{Files: fc})
	writeAllBlocks(t, s, data, 1000, 114)
	dir := filepath.Join(root, "multi")
	cached := fc.OpenFiles()

	// Deleted behind our back: the cached descriptor still reads the old
	// bytes, so only the check can tell.
	if err := os.Remove(filepath.Join(dir, "sub", "deeper", "c.bin")); err != nil {
		t.Fatal(err)
	}
	err := s.ReadBlock(3, 0, make([]byte, 10))
	assertFileError(t, "read of a deleted file", err, "multi/sub/deeper/c.bin", ErrFileChanged)
	if errors.Is(err, ErrNotPresent) {
		t.Fatalf("changed file reported as never written: %v", err)
	}
	if n := fc.OpenFiles(); n != cached-1 {
		t.Fatalf("OpenFiles = %d after dropping one of %d", n, cached)
	}
	// The descriptor is gone, so the next call sees the disk as it is.
	assertFileError(t, "read again", s.ReadBlock(3, 0, make([]byte, 10)), "multi/sub/deeper/c.bin", ErrNotPresent)

	// A write into a deleted file would vanish with the inode.
	if err := os.Remove(filepath.Join(dir, "a.bin")); err != nil {
		t.Fatal(err)
	}
	assertFileError(t, "write to a deleted file", s.WriteBlock(0, 0, pieceData(mi, data, 0)), "multi/a.bin", ErrFileChanged)
	if _, err := os.Stat(filepath.Join(dir, "a.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a.bin: %v", err)
	}

	// Truncated behind our back.
	if err := os.Truncate(filepath.Join(dir, "d.bin"), 10); err != nil {
		t.Fatal(err)
	}
	assertFileError(t, "read of a truncated file", s.ReadBlock(6, 0, make([]byte, 10)), "multi/d.bin", ErrFileChanged)

	// Recheck keeps treating all of it as pieces that are not there.
	if err := os.Remove(filepath.Join(dir, "sub", "b.bin")); err != nil {
		t.Fatal(err)
	}
	for p := range mi.NumPieces() {
		if ok, err := s.HashPiece(p); ok || err != nil {
			t.Fatalf("HashPiece(%d) = %v, %v; want false, nil", p, ok, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fc.OpenFiles(); n != 0 {
		t.Fatalf("OpenFiles = %d after Close", n)
	}
}

func TestFileCacheAccountingAfterClose(t *testing.T) {
	// Refusals, missing files and dropped descriptors must all leave the
	// shared count exact: it is what bounds the process's descriptors.
	root := t.TempDir()
	outside := outsideDir(t, "a.bin")
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	fc := NewFileCache(4)
	fc.liveEvery = 0
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 115)
	emi, _ := newTorrent(t, "evil", 1000, mixedFiles, 115)
	s := openT(t, root, mi, Options{Root: root, Files: fc, MaxOpenFiles: 3})
	evil := openT(t, root, emi, Options{Root: root, Files: fc})
	s2 := openT(t, root, mi, Options{Root: root, Files: fc})

	if err := s2.ReadBlock(0, 0, make([]byte, 10)); !errors.Is(err, ErrNotPresent) {
		t.Fatal(err)
	}
	writeAllBlocks(t, s, data, 300, 116)
	if err := evil.WriteBlock(0, 0, data[:10]); !errors.Is(err, ErrUnsafePath) {
		t.Fatal(err)
	}
	for p := range mi.NumPieces() {
		if ok, err := s2.HashPiece(p); !ok || err != nil {
			t.Fatal(p, ok, err)
		}
	}
	os.Remove(filepath.Join(root, "multi", "d.bin"))
	if ok, err := s2.HashPiece(6); ok || err != nil {
		t.Fatal(ok, err)
	}
	if n, fds := fc.OpenFiles(), openFDsUnder(t, root); n == 0 || n > 4 || fds != n {
		t.Fatalf("idle: OpenFiles = %d, /proc shows %d, limit 4", n, fds)
	}
	s.Close()
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	evil.Close()
	if n, fds := fc.OpenFiles(), openFDsUnder(t, root); n != 0 || fds != 0 {
		t.Fatalf("after Close: OpenFiles = %d, /proc shows %d", n, fds)
	}
	if fds := openFDsUnder(t, outside); fds != 0 {
		t.Fatalf("%d descriptors open outside the root", fds)
	}
	assertUntouched(t, outside, "a.bin")
}
