package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// writeTorrentFiles puts mi's data at dir as a finished download would.
func writeTorrentFiles(t *testing.T, dir string, root string, data []byte, files []tfile, name string) {
	t.Helper()
	mi, _ := newTorrent(t, name, 1000, files, 1)
	s := openT(t, dir, mi, Options{Root: root})
	writeAllBlocks(t, s, data, 700, 2)
	if err := s.EnsureEmptyFiles(); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func checkFiles(t *testing.T, base string, data []byte, files []tfile) {
	t.Helper()
	off := 0
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(f.path)))
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		if !bytes.Equal(got, data[off:off+int(f.length)]) {
			t.Fatalf("%s: content differs", f.path)
		}
		off += int(f.length)
	}
}

func testMove(t *testing.T, copying bool) {
	if copying {
		old := moveRename
		moveRename = func(int, string, int, string) error { return unix.EXDEV }
		t.Cleanup(func() { moveRename = old })
	}
	root := t.TempDir()
	from, to := filepath.Join(root, "a"), filepath.Join(root, "b", "c")
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 1)
	writeTorrentFiles(t, from, root, data, mixedFiles, "multi")
	os.WriteFile(filepath.Join(from, ".parts"), []byte("p"), 0o644)
	os.WriteFile(filepath.Join(from, "other"), []byte("not ours"), 0o644)
	before, _ := os.Stat(filepath.Join(from, "multi", "a.bin"))
	m, err := NewMove(mi, from, to, root, []string{".parts"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Conflict(); err != nil {
		t.Fatalf("Conflict: %v", err)
	}
	if err := m.Run(context.Background(), false); err != nil {
		t.Fatalf("Run: %v", err)
	}
	m.Prune()
	checkFiles(t, filepath.Join(to, "multi"), data, mixedFiles)
	if b, _ := os.ReadFile(filepath.Join(to, ".parts")); string(b) != "p" {
		t.Fatalf("part file not moved: %q", b)
	}
	if got := listTree(t, from); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("left at the source: %v", got)
	}
	after, _ := os.Stat(filepath.Join(to, "multi", "a.bin"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("mtime changed: %v -> %v", before.ModTime(), after.ModTime())
	}
}

// Files land byte for byte at the destination with their times, the part
// file too; the source keeps only what is not the torrent's.
func TestMoveRenames(t *testing.T) { testMove(t, false) }

// Across file systems each file is copied, synced and renamed into place.
func TestMoveCopies(t *testing.T) { testMove(t, true) }

// A destination already holding one of the torrent's names is refused
// before anything moves, and a run without resume refuses it too.
func TestMoveConflict(t *testing.T) {
	root := t.TempDir()
	from, to := filepath.Join(root, "a"), filepath.Join(root, "b")
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 1)
	writeTorrentFiles(t, from, root, data, mixedFiles, "multi")
	os.MkdirAll(filepath.Join(to, "multi", "sub"), 0o755)
	os.WriteFile(filepath.Join(to, "multi", "sub", "b.bin"), []byte("theirs"), 0o644)
	m, err := NewMove(mi, from, to, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Conflict(); !errors.Is(err, ErrDestExists) {
		t.Fatalf("Conflict: %v", err)
	}
	if err := m.Run(context.Background(), false); !errors.Is(err, ErrDestExists) {
		t.Fatalf("Run: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(to, "multi", "sub", "b.bin")); string(b) != "theirs" {
		t.Fatalf("their file overwritten: %q", b)
	}
	if _, err := NewMove(mi, from, filepath.Join(from, "multi", "x"), root, nil); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("move into its own folder: %v", err)
	}
	if _, err := NewMove(mi, from, "/elsewhere", root, nil); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("move out of the root: %v", err)
	}
}

// A move cut short (some files moved, one at both places, a copy's
// temporary left behind) finishes with a resumed run.
func TestMoveResume(t *testing.T) {
	root := t.TempDir()
	from, to := filepath.Join(root, "a"), filepath.Join(root, "b")
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 1)
	writeTorrentFiles(t, from, root, data, mixedFiles, "multi")
	os.MkdirAll(filepath.Join(to, "multi", "sub", "deeper"), 0o755)
	os.Rename(filepath.Join(from, "multi", "a.bin"), filepath.Join(to, "multi", "a.bin"))
	b, _ := os.ReadFile(filepath.Join(from, "multi", "sub", "deeper", "c.bin"))
	os.WriteFile(filepath.Join(to, "multi", "sub", "deeper", "c.bin"), b, 0o644)
	os.WriteFile(filepath.Join(to, "multi", ".d.bin"+moveTmpSuffix), []byte("torn"), 0o644)
	m, err := NewMove(mi, from, to, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background(), true); err != nil {
		t.Fatalf("Run: %v", err)
	}
	m.Prune()
	checkFiles(t, filepath.Join(to, "multi"), data, mixedFiles)
	if got := listTree(t, from); len(got) != 0 {
		t.Fatalf("left at the source: %v", got)
	}
}

// A file that appears at the destination after the check fails the run
// there; Reverse puts back what had moved and leaves their file alone.
func TestMoveReverse(t *testing.T) {
	root := t.TempDir()
	from, to := filepath.Join(root, "a"), filepath.Join(root, "b")
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 1)
	writeTorrentFiles(t, from, root, data, mixedFiles, "multi")
	m, err := NewMove(mi, from, to, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Conflict(); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(to, "multi", "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(to, "multi", "sub", "deeper", "c.bin"), []byte("theirs"), 0o644)
	if err := m.Run(context.Background(), false); !errors.Is(err, ErrDestExists) {
		t.Fatalf("Run: %v", err)
	}
	back := m.Reverse()
	if err := back.Run(context.Background(), true); err != nil {
		t.Fatalf("undo: %v", err)
	}
	back.Prune()
	checkFiles(t, filepath.Join(from, "multi"), data, mixedFiles)
	if got := listTree(t, to); !slices.Equal(got, []string{"multi", "multi/sub", "multi/sub/deeper", "multi/sub/deeper/c.bin"}) {
		t.Fatalf("left at the destination: %v", got)
	}
}
