package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRecheckFindsExactlyIntactPieces(t *testing.T) {
	files := []tfile{
		{path: "a.bin", length: 2500},
		{path: "gone.bin", length: 1200},
		{path: "sub/short.bin", length: 3000},
		{path: ".pad/300", length: 300, pad: true},
		{path: "sub/rot.bin", length: 4100},
		{path: "e", length: 0},
	}
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, files, 50)
	s := openT(t, root, mi, Options{})
	pool := NewPool(2, 3)
	defer pool.Close()

	// Nothing on disk: nothing intact, and no error.
	have, err := Recheck(context.Background(), s, pool, nil)
	if err != nil || have.Count() != 0 {
		t.Fatalf("empty recheck: %d pieces, err %v", have.Count(), err)
	}

	writeAllBlocks(t, s, data, 1000, 51)
	// Damage the data the ways a user's disk gets damaged, recording which
	// torrent bytes are no longer right.
	bad := make([]bool, len(data))
	markBad := func(fi int, from, to int64) {
		f := mi.Files[fi]
		for i := f.Offset + from; i < f.Offset+to; i++ {
			bad[i] = true
		}
	}
	dir := filepath.Join(root, "multi")
	if err := os.Remove(filepath.Join(dir, "gone.bin")); err != nil {
		t.Fatal(err)
	}
	markBad(1, 0, 1200)
	if err := os.Truncate(filepath.Join(dir, "sub", "short.bin"), 1700); err != nil {
		t.Fatal(err)
	}
	markBad(2, 1700, 3000)
	fh, err := os.OpenFile(filepath.Join(dir, "sub", "rot.bin"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteAt([]byte{^data[mi.Files[4].Offset+4099]}, 4099) // very last byte
	fh.Close()
	markBad(4, 4099, 4100)

	var calls [][2]int
	// A fresh Storage, as after a restart: no cached descriptors.
	s2 := openT(t, root, mi, Options{})
	have, err = Recheck(context.Background(), s2, pool, func(d, n int) { calls = append(calls, [2]int{d, n}) })
	if err != nil {
		t.Fatalf("Recheck: %v", err)
	}
	for p := range mi.NumPieces() {
		intact := true
		for i := int64(p) * mi.PieceLength; i < int64(p)*mi.PieceLength+mi.PieceSize(p); i++ {
			intact = intact && !bad[i]
		}
		if have.Test(uint(p)) != intact {
			t.Errorf("piece %d: recheck says %v, data intact = %v", p, have.Test(uint(p)), intact)
		}
	}
	if have.Count() == 0 || int(have.Count()) == mi.NumPieces() {
		t.Fatalf("damage pattern should leave some but not all pieces: %d", have.Count())
	}
	n := mi.NumPieces()
	if len(calls) == 0 || calls[len(calls)-1] != [2]int{n, n} {
		t.Fatalf("progress calls %v, want to end at (%d, %d)", calls, n, n)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] <= calls[i-1][0] {
			t.Fatalf("progress not increasing: %v", calls)
		}
	}
}

func TestRecheckCancelAndErrors(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 52)
	root := t.TempDir()
	s := openT(t, root, mi, Options{})
	writeAllBlocks(t, s, data, 1000, 53)
	pool := NewPool(1, 1)
	defer pool.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Recheck(ctx, s, pool, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled recheck: %v", err)
	}
	s.Close()
	if _, err := Recheck(context.Background(), s, pool, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("recheck of closed storage: %v, want ErrClosed", err)
	}
	closed := NewPool(1, 1)
	closed.Close()
	s2 := openT(t, root, mi, Options{})
	if _, err := Recheck(context.Background(), s2, closed, nil); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("recheck on closed pool: %v", err)
	}
}
