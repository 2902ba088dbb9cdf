package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// outsideDir is a folder outside the download root holding victim files
// with known content at the given slash paths, as an attacker's target.
func outsideDir(t *testing.T, victims ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range victims {
		p := filepath.Join(dir, filepath.FromSlash(v))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("victim "+v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// assertUntouched checks that dir holds exactly victims, each with its
// original content: nothing overwritten, created or deleted.
func assertUntouched(t *testing.T, dir string, victims ...string) {
	t.Helper()
	var want []string
	for _, v := range victims {
		for d := v; d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			if !slices.Contains(want, d) {
				want = append(want, d)
			}
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(v)))
		if err != nil || string(got) != "victim "+v {
			t.Errorf("outside file %s: %q, %v; want its original content", v, got, err)
		}
	}
	slices.Sort(want)
	if tree := listTree(t, dir); !slices.Equal(tree, want) {
		t.Errorf("outside folder holds %v, want only %v", tree, want)
	}
}

// assertUnsafe checks err is a refusal naming the torrent's path, and not
// where the link leads.
func assertUnsafe(t *testing.T, what string, err error, wantPath, outside string) {
	t.Helper()
	var fe *FileError
	if !errors.Is(err, ErrUnsafePath) || !errors.As(err, &fe) {
		t.Fatalf("%s: %v, want a *FileError wrapping ErrUnsafePath", what, err)
	}
	if fe.Path != filepath.FromSlash(wantPath) {
		t.Errorf("%s: error names %q, want %q", what, fe.Path, wantPath)
	}
	if strings.Contains(err.Error(), outside) {
		t.Errorf("%s: error %q reveals the link's target", what, err)
	}
}

func TestTorrentNamedLikeSymlinkCannotEscape(t *testing.T) {
	// With Root empty the download folder is the limit; with Root set, the
	// root is. The attack is the same: dl/evil -> OUTSIDE, torrent "evil".
	for _, withRoot := range []bool{false, true} {
		t.Run(map[bool]string{false: "folder", true: "root"}[withRoot], func(t *testing.T) {
			victims := []string{"a.bin", "sub/deeper/c.bin"}
			outside := outsideDir(t, victims...)
			root := t.TempDir()
			if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
				t.Fatal(err)
			}
			mi, data := newTorrent(t, "evil", 1000, mixedFiles, 100)
			opt := Options{}
			if withRoot {
				opt.Root = root
			}
			s := openT(t, root, mi, opt)

			err := s.WriteBlock(0, 0, pieceData(mi, data, 0)[:100])
			assertUnsafe(t, "WriteBlock", err, "evil/a.bin", outside)
			for p := range mi.NumPieces() {
				if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); ok || !errors.Is(err, ErrUnsafePath) {
					t.Fatalf("HashAndWritePiece(%d) = %v, %v; want ErrUnsafePath", p, ok, err)
				}
			}
			assertUnsafe(t, "ReadBlock", s.ReadBlock(3, 0, make([]byte, 10)), "evil/sub/deeper/c.bin", outside)
			// A recheck must stop on it, not report the pieces absent and
			// let the session download them again into the same trap.
			if ok, err := s.HashPiece(0); ok || !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("HashPiece = %v, %v; want ErrUnsafePath", ok, err)
			}
			if err := s.EnsureEmptyFiles(); !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("EnsureEmptyFiles: %v, want ErrUnsafePath", err)
			}
			for _, st := range s.FileStats() {
				if st.Size != -1 {
					t.Errorf("FileStats sees %s through the link: %+v", st.Path, st)
				}
			}
			assertUntouched(t, outside, victims...)

			if err := s.Remove(); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Remove: %v, want it to report the refused files", err)
			}
			assertUntouched(t, outside, victims...)
			if fi, err := os.Lstat(filepath.Join(root, "evil")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link itself: %v, %v", fi, err)
			}
		})
	}
}

func TestSymlinkAtFilePathCannotEscape(t *testing.T) {
	outside := outsideDir(t, "victim")
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 101)
	if err := os.MkdirAll(filepath.Join(root, "multi"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "multi", "a.bin")
	if err := os.Symlink(filepath.Join(outside, "victim"), link); err != nil {
		t.Fatal(err)
	}
	s := openT(t, root, mi, Options{Root: root})

	assertUnsafe(t, "WriteBlock", s.WriteBlock(0, 0, pieceData(mi, data, 0)), "multi/a.bin", outside)
	assertUnsafe(t, "ReadBlock", s.ReadBlock(0, 0, make([]byte, 10)), "multi/a.bin", outside)
	// The torrent's other files are fine: piece 5 lies in sub/deeper/c.bin.
	if err := s.WriteBlock(5, 0, pieceData(mi, data, 5)); err != nil {
		t.Fatalf("write to an unaffected file: %v", err)
	}
	if st := s.FileStats()[0]; st.Size != -1 {
		t.Errorf("FileStats follows the link out: %+v", st)
	}
	assertUntouched(t, outside, "victim")

	// Remove may take the link away (it sits inside the root), never the
	// file it points to.
	if err := s.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	assertUntouched(t, outside, "victim")
	if tree := listTree(t, root); len(tree) != 0 {
		t.Errorf("after Remove the root holds %v", tree)
	}

	// The same for a single-file torrent, whose file sits in the root.
	smi, sdata := singleFile(t, "movie.iso", 256, 1000, 102)
	if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "movie.iso")); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, root, smi, Options{})
	assertUnsafe(t, "single-file WriteBlock", s2.WriteBlock(0, 0, sdata[:256]), "movie.iso", outside)
	if err := s2.Remove(); err != nil {
		t.Fatalf("single-file Remove: %v", err)
	}
	assertUntouched(t, outside, "victim")
}

func TestFolderSwappedForSymlinkLater(t *testing.T) {
	// A link planted after the torrent was added and partly written: only
	// the check made by the very call that opens a file can catch it.
	files := []tfile{{path: "a/1.bin", length: 1000}, {path: "b/2.bin", length: 1000}, {path: "b/3.bin", length: 1000}}
	mi, data := newTorrent(t, "show", 1000, files, 103)
	root := t.TempDir()
	outside := outsideDir(t, "3.bin")
	dir := filepath.Join(root, "tv")
	s := openT(t, dir, mi, Options{Root: root})
	for p := range 2 {
		if err := s.WriteBlock(p, 0, pieceData(mi, data, p)); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(dir, "show", "b")
	if err := os.Rename(b, filepath.Join(root, "b.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, b); err != nil {
		t.Fatal(err)
	}

	assertUnsafe(t, "write to a file not yet open", s.WriteBlock(2, 0, pieceData(mi, data, 2)), "show/b/3.bin", outside)
	assertUnsafe(t, "read", s.ReadBlock(2, 0, make([]byte, 10)), "show/b/3.bin", outside)
	if ok, err := s.HashAndWritePiece(2, pieceData(mi, data, 2)); ok || !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("HashAndWritePiece = %v, %v", ok, err)
	}
	assertUntouched(t, outside, "3.bin")
	if err := s.Remove(); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Remove: %v, want ErrUnsafePath for the files behind the link", err)
	}
	assertUntouched(t, outside, "3.bin")
	// The descriptor cached for b/2.bin before the swap followed its file
	// to b.old, inside the root, which Remove does not name.
	if got, err := os.ReadFile(filepath.Join(root, "b.old", "2.bin")); err != nil || !bytes.Equal(got, pieceData(mi, data, 1)) {
		t.Errorf("b.old/2.bin: %v", err)
	}
}

func TestSymlinkInsideRootIsFollowed(t *testing.T) {
	// An operator spreading downloads over disks: dl/movies -> disk2/movies.
	// Relative links that stay below the root work like folders.
	if !haveOpenat2() {
		t.Skip("SKIP (no openat2: every symlink is refused, see TestFallbackWalk)")
	}
	root := t.TempDir()
	real := filepath.Join(root, "disk2", "movies")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("disk2", "movies"), filepath.Join(root, "movies")); err != nil {
		t.Fatal(err)
	}
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 104)
	s := openT(t, filepath.Join(root, "movies"), mi, Options{Root: root})
	writeAllBlocks(t, s, data, 500, 105)
	for p := range mi.NumPieces() {
		if ok, err := s.HashPiece(p); !ok || err != nil {
			t.Fatalf("HashPiece(%d) = %v, %v", p, ok, err)
		}
	}
	for _, f := range mi.Files {
		got, err := os.ReadFile(filepath.Join(append([]string{real, "multi"}, f.Path...)...))
		if err != nil || !bytes.Equal(got, data[f.Offset:f.Offset+f.Length]) {
			t.Fatalf("%v on disk2: %v", f.Path, err)
		}
	}
	saved := s.FileStats()
	if saved[0].Size != 2500 || !s.FilesLookIntact(saved) {
		t.Fatalf("FileStats through the link: %+v", saved)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if tree := listTree(t, root); !slices.Equal(tree, []string{"disk2", "disk2/movies", "movies"}) {
		t.Fatalf("after Remove the root holds %v", tree)
	}

	// An absolute link is refused even though it points inside: the
	// kernel's check cannot tell where an absolute path lands.
	if err := os.Symlink(real, filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, filepath.Join(root, "abs"), mi, Options{Root: root})
	if err := s2.WriteBlock(0, 0, []byte{1}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("write through an absolute link: %v, want ErrUnsafePath", err)
	}
	if tree := listTree(t, real); len(tree) != 0 {
		t.Fatalf("the absolute link was followed: %v", tree)
	}
}

func TestFallbackWalk(t *testing.T) {
	// Kernels without openat2 get the O_NOFOLLOW walk: nested folders are
	// still created, and every symlink is refused, inside the root or not.
	open := func(t *testing.T, dir string, opt Options) (*Storage, []byte) {
		mi, data := newTorrent(t, "multi", 1000, mixedFiles, 106)
		s := openT(t, dir, mi, opt)
		s.files.at.walk = true
		return s, data
	}
	t.Run("plain", func(t *testing.T) {
		root := t.TempDir()
		s, data := open(t, filepath.Join(root, "tv", "new"), Options{Root: root})
		writeAllBlocks(t, s, data, 500, 107)
		mi := s.MetaInfo()
		for p := range mi.NumPieces() {
			if ok, err := s.HashPiece(p); !ok || err != nil {
				t.Fatalf("HashPiece(%d) = %v, %v", p, ok, err)
			}
		}
		if st := s.FileStats(); st[3].Size != 3333 || !s.FilesLookIntact(st) {
			t.Fatalf("FileStats: %+v", st)
		}
		got, err := os.ReadFile(filepath.Join(root, "tv", "new", "multi", "sub", "deeper", "c.bin"))
		if err != nil || !bytes.Equal(got, data[mi.Files[3].Offset:][:3333]) {
			t.Fatalf("nested file: %v", err)
		}
		if err := s.Remove(); err != nil {
			t.Fatal(err)
		}
		if tree := listTree(t, root); !slices.Equal(tree, []string{"tv", "tv/new"}) {
			t.Fatalf("after Remove: %v", tree)
		}
	})
	t.Run("link inside root", func(t *testing.T) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "disk2"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("disk2", filepath.Join(root, "movies")); err != nil {
			t.Fatal(err)
		}
		s, data := open(t, filepath.Join(root, "movies"), Options{Root: root})
		assertUnsafe(t, "write", s.WriteBlock(0, 0, data[:10]), "multi/a.bin", filepath.Join(root, "disk2"))
		if tree := listTree(t, filepath.Join(root, "disk2")); len(tree) != 0 {
			t.Fatalf("link followed: %v", tree)
		}
	})
	t.Run("link leaving root", func(t *testing.T) {
		outside := outsideDir(t, "a.bin")
		root := t.TempDir()
		if err := os.Symlink(outside, filepath.Join(root, "multi")); err != nil {
			t.Fatal(err)
		}
		s, data := open(t, root, Options{})
		assertUnsafe(t, "write", s.WriteBlock(0, 0, data[:10]), "multi/a.bin", outside)
		assertUnsafe(t, "read", s.ReadBlock(0, 0, make([]byte, 10)), "multi/a.bin", outside)
		if st := s.FileStats(); st[0].Size != -1 {
			t.Fatalf("FileStats: %+v", st)
		}
		s.Remove()
		assertUntouched(t, outside, "a.bin")
	})
	t.Run("link at file path", func(t *testing.T) {
		root := t.TempDir()
		mustWrite(t, filepath.Join(root, "other.bin"))
		if err := os.MkdirAll(filepath.Join(root, "multi"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../other.bin", filepath.Join(root, "multi", "a.bin")); err != nil {
			t.Fatal(err)
		}
		s, data := open(t, root, Options{})
		assertUnsafe(t, "write", s.WriteBlock(0, 0, data[:10]), "multi/a.bin", "other.bin")
		assertUnsafe(t, "read", s.ReadBlock(0, 0, make([]byte, 10)), "multi/a.bin", "other.bin")
		if st := s.FileStats(); st[0].Size != -1 {
			t.Fatalf("FileStats: %+v", st)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "other.bin")); string(got) != "keep me" {
			t.Fatalf("link target changed: %q", got)
		}
	})
}

func TestOpenWithRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "dl")
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 108)
	for _, dir := range []string{base, filepath.Join(base, "dl2"), "/", filepath.Join(root, "..", "x")} {
		if _, err := OpenWith(dir, mi, Options{Root: root}); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("folder %s outside root %s: %v, want ErrUnsafePath", dir, root, err)
		}
	}
	// Open touches nothing, even for folders that do not exist yet; the
	// first write creates them below the root.
	dir := filepath.Join(root, "a", "..", "tv", "shows")
	s := openT(t, dir, mi, Options{Root: root + "/"})
	if _, err := os.Stat(base + "/dl"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open touched the disk: %v", err)
	}
	if err := s.WriteBlock(1, 0, pieceData(mi, data, 1)); err != nil {
		t.Fatal(err)
	}
	want := []string{"tv", "tv/shows", "tv/shows/multi", "tv/shows/multi/a.bin", "tv/shows/multi/empty.txt"}
	if tree := listTree(t, root); !slices.Equal(tree, want) {
		t.Fatalf("root holds %v, want %v", tree, want)
	}
	if got := s.FileStats()[0].Path; got != filepath.Join("multi", "a.bin") {
		t.Fatalf("FileStats path %q, want it relative to the download folder", got)
	}
	// The root itself is a fine download folder.
	openT(t, root, mi, Options{Root: root})
}
