package storage

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"gotorrentserver/metainfo"
)

func TestCacheServesCorrectBytesAndCoalesces(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 40)
	c := NewCache(10_000)
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	writeAllBlocks(t, s, data, 1000, 41)

	// Many "peers" ask for blocks of piece 3 at once: one disk read.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			begin := int64(i * 50)
			dst := make([]byte, 100)
			if err := s.ReadBlockCached(3, begin, dst); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(dst, pieceData(mi, data, 3)[begin:begin+100]) {
				t.Errorf("block at %d of piece 3 wrong", begin)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Misses != 1 || st.Hits != 15 || st.Pieces != 1 || st.Bytes != 1000 {
		t.Fatalf("after 16 reads of one piece: %+v, want 1 miss, 15 hits", st)
	}

	// A write to the piece must not leave stale bytes in the cache.
	fresh := bytes.Repeat([]byte{0x5a}, 1000)
	if err := s.WriteBlock(3, 0, fresh); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 1000)
	if err := s.ReadBlockCached(3, 0, dst); err != nil || !bytes.Equal(dst, fresh) {
		t.Fatalf("cached read after write: err=%v, fresh=%v", err, bytes.Equal(dst, fresh))
	}
}

func TestCacheBoundsMemory(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 42)
	const limit = 3500 // room for three 1000-byte pieces
	c := NewCache(limit)
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	writeAllBlocks(t, s, data, 1000, 43)

	rng := rand.New(rand.NewPCG(44, 44))
	for range 500 {
		p := rng.IntN(mi.NumPieces())
		size := mi.PieceSize(p)
		begin := rng.Int64N(size)
		dst := make([]byte, rng.Int64N(size-begin)+1)
		if err := s.ReadBlockCached(p, begin, dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, pieceData(mi, data, p)[begin:begin+int64(len(dst))]) {
			t.Fatalf("cached block (%d, %d) wrong", p, begin)
		}
		if st := c.Stats(); st.Bytes > limit || st.Pieces > 3 {
			t.Fatalf("cache holds %d bytes in %d pieces, limit %d", st.Bytes, st.Pieces, limit)
		}
	}
	st := c.Stats()
	if st.Hits == 0 || st.Misses <= int64(mi.NumPieces()-3) {
		t.Fatalf("stats %+v: expected both hits and evictions over %d pieces", st, mi.NumPieces())
	}

	// Recently used pieces stay: read 0, 1, 2, then 0 again -> a hit.
	c2 := NewCache(limit)
	s2 := openT(t, t.TempDir(), mi, Options{Cache: c2})
	writeAllBlocks(t, s2, data, 1000, 45)
	for _, p := range []int{0, 1, 2, 0, 3, 0} {
		if err := s2.ReadBlockCached(p, 0, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	// 0 was refreshed before 3 arrived, so 1 was evicted, not 0.
	if st := c2.Stats(); st.Misses != 4 || st.Hits != 2 {
		t.Fatalf("LRU stats %+v, want 4 misses, 2 hits", st)
	}

	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if st := c2.Stats(); st.Pieces != 0 || st.Bytes != 0 {
		t.Fatalf("closed storage still cached: %+v", st)
	}
}

func TestCacheMissingData(t *testing.T) {
	mi, _ := newTorrent(t, "multi", 1000, mixedFiles, 46)
	c := NewCache(0)
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	if err := s.ReadBlockCached(0, 0, make([]byte, 10)); err == nil {
		t.Fatal("cached read of absent data succeeded")
	}
	if st := c.Stats(); st.Pieces != 0 || st.Limit != DefaultCacheSize {
		t.Fatalf("failed read was cached or default wrong: %+v", st)
	}
}

// Evicted buffers are reused for later fills; a reader still copying from
// an evicted piece must never see the next piece's bytes in it.
func TestCacheRecyclesEvictedBuffersSafely(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 44)
	c := NewCache(2500) // two pieces: nearly every read evicts
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	writeAllBlocks(t, s, data, 1000, 45)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			dst := make([]byte, 100)
			for range 2000 {
				piece := r.IntN(mi.NumPieces())
				size := pieceData(mi, data, piece)
				begin := int64(r.IntN(len(size) - len(dst) + 1))
				if err := s.ReadBlockCached(piece, begin, dst); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(dst, size[begin:begin+int64(len(dst))]) {
					t.Errorf("piece %d at %d: wrong bytes", piece, begin)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.freeLen == 0 {
		t.Fatal("no evicted buffer was kept for reuse")
	}
	if c.freeLen > maxFreeBytes {
		t.Fatalf("%d bytes kept free, bound %d", c.freeLen, maxFreeBytes)
	}
}

// blockReader reads 100-byte blocks through the cache and checks them.
func blockReader(t *testing.T, s *Storage, mi *metainfo.MetaInfo, data []byte) func(piece int, begin int64) {
	return func(piece int, begin int64) {
		t.Helper()
		dst := make([]byte, 100)
		if err := s.ReadBlockCached(piece, begin, dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, pieceData(mi, data, piece)[begin:begin+100]) {
			t.Fatalf("block at %d of piece %d wrong", begin, piece)
		}
	}
}

// Many slow readers each in a different piece evict each other's pieces
// before their next block: the cache then reads blocks alone instead of
// a whole piece per block, and goes back to whole pieces once readers
// share pieces again.
func TestCacheReadsBlocksAloneWhileThrashing(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 44)
	c := NewCache(1000) // one piece
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	writeAllBlocks(t, s, data, 1000, 45)
	pieces := mi.NumPieces() - 1 // whole ones
	read := blockReader(t, s, mi, data)
	// One reader per piece, each reading its piece's next block in turn:
	// every lookup misses.
	for round := range 200 {
		for piece := range pieces {
			read(piece, int64(round%10*100))
		}
	}
	st := c.Stats()
	if n := int64(200 * pieces); st.Misses < n*8/10 || st.Blocks < n/2 {
		t.Fatalf("thrashing: %+v, want most of %d lookups missed, most of them block reads", st, n)
	}
	// Now every reader wants piece 5: hits come back.
	before := c.Stats()
	for range 2000 {
		read(5, 300)
	}
	st = c.Stats()
	if hits := st.Hits - before.Hits; hits < 1500 {
		t.Fatalf("one shared piece: %d hits of 2000 (%+v)", hits, st)
	}
}

// After thrashing, a reader going through pieces of its own block by
// block gets whole-piece fills again: the hit rate alone, held down by
// the block reads, would have kept it reading one block per syscall.
func TestCacheLeavesThrashingForSequentialReaders(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 44)
	c := NewCache(2000) // two pieces
	s := openT(t, t.TempDir(), mi, Options{Cache: c})
	writeAllBlocks(t, s, data, 1000, 45)
	pieces := mi.NumPieces() - 1
	read := blockReader(t, s, mi, data)
	for round := range 200 {
		for piece := range pieces {
			read(piece, int64(round%10*100))
		}
	}
	if st := c.Stats(); st.Blocks == 0 {
		t.Fatalf("never thrashed: %+v", st)
	}
	// One reader, every block of every piece in order, many times over.
	before := c.Stats()
	n := 0
	for range 60 {
		for piece := range pieces {
			for b := range 10 {
				read(piece, int64(b*100))
				n++
			}
		}
	}
	st := c.Stats()
	if hits := st.Hits - before.Hits; hits < int64(n)*8/10 {
		t.Fatalf("sequential reader after thrashing: %d hits of %d lookups (%+v)", hits, n, st)
	}
}
