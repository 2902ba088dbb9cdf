package storage

import (
	"fmt"
	"sync"
	"testing"
)

func manyFiles(n int, length int64) []tfile {
	fs := make([]tfile, n)
	for i := range fs {
		fs[i] = tfile{path: fmt.Sprintf("d%d/f%d.bin", i%3, i), length: length}
	}
	return fs
}

func TestFDLRUBoundsAndCloses(t *testing.T) {
	// The per-torrent bound must hold both with a private descriptor cache
	// and inside a roomy shared one.
	t.Run("private", func(t *testing.T) { testFDLRU(t, nil) })
	t.Run("shared", func(t *testing.T) { testFDLRU(t, NewFileCache(100)) })
}

func testFDLRU(t *testing.T, fc *FileCache) {
	root := t.TempDir()
	mi, data := newTorrent(t, "many", 700, manyFiles(9, 500), 60)
	s := openT(t, root, mi, Options{MaxOpenFiles: 2, Files: fc})
	for p := range mi.NumPieces() {
		pd := pieceData(mi, data, p)
		if err := s.WriteBlock(p, 0, pd); err != nil {
			t.Fatal(err)
		}
		if n := openFDsUnder(t, root); n > 2 {
			t.Fatalf("after piece %d: %d descriptors open, limit 2", p, n)
		}
		if ok, err := s.HashPiece(p); !ok || err != nil {
			t.Fatalf("HashPiece(%d) = %v, %v", p, ok, err)
		}
	}
	if n := openFDsUnder(t, root); n == 0 {
		t.Fatal("no descriptor cached at all")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDsUnder(t, root); n != 0 {
		t.Fatalf("%d descriptors still open after Close", n)
	}
	if _, err := s.HashPiece(0); err != ErrClosed {
		t.Fatalf("HashPiece after Close: %v", err)
	}
}

func TestSharedFileCacheGlobalLimit(t *testing.T) {
	root := t.TempDir()
	fc := NewFileCache(3)
	var ss []*Storage
	var datas [][]byte
	for i := range 3 {
		mi, data := newTorrent(t, fmt.Sprintf("t%d", i), 400, manyFiles(5, 300), uint64(61+i))
		ss = append(ss, openT(t, root, mi, Options{MaxOpenFiles: 16, Files: fc}))
		datas = append(datas, data)
	}
	// Concurrent workers on all three torrents, as the pool would run them.
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mi := s.MetaInfo()
			for p := range mi.NumPieces() {
				if err := s.WriteBlock(p, 0, pieceData(mi, datas[i], p)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// While busy the limit may be exceeded by one per running call; once
	// idle it holds.
	if n, fdn := fc.OpenFiles(), openFDsUnder(t, root); n > 3 || fdn != n {
		t.Fatalf("idle shared cache: OpenFiles=%d, /proc shows %d, limit 3", n, fdn)
	}
	for i, s := range ss {
		mi := s.MetaInfo()
		for p := range mi.NumPieces() {
			if ok, err := s.HashPiece(p); !ok || err != nil {
				t.Fatalf("torrent %d piece %d: %v, %v", i, p, ok, err)
			}
		}
	}
	for _, s := range ss {
		s.Close()
	}
	if n := openFDsUnder(t, root); n != 0 || fc.OpenFiles() != 0 {
		t.Fatalf("after closing all: %d fds, OpenFiles=%d", n, fc.OpenFiles())
	}
}

func TestSafeJoin(t *testing.T) {
	for _, c := range []struct {
		comps []string
		ok    bool
	}{
		{[]string{"a", "b"}, true},
		{[]string{"..", "x"}, false},
		{[]string{"a/../../x"}, false},
		{[]string{`a\b`}, false},
		{[]string{}, false},
		{[]string{"a", ""}, false},
	} {
		_, err := safeJoin("/data/root", c.comps)
		if (err == nil) != c.ok {
			t.Errorf("safeJoin(%q): err=%v, want ok=%v", c.comps, err, c.ok)
		}
	}
}
