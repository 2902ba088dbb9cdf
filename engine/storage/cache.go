package storage

import (
	"container/list"
	"sync"
)

// DefaultCacheSize is a reasonable read cache for one busy seeding torrent.
const DefaultCacheSize = 64 << 20

// Cache holds whole pieces read from disk so that many peers requesting
// blocks of the same piece cost one disk read. Concurrent misses on the same
// piece are coalesced into a single read. It is bounded in bytes with LRU
// eviction and may be shared by many Storages. All methods are safe for
// concurrent use; ReadBlock blocks on disk on a miss, so call it from pool
// workers.
type Cache struct {
	mu       sync.Mutex
	limit    int64
	used     int64
	lru      list.List // of *cacheEntry, front = most recently used
	entries  map[cacheKey]*list.Element
	inflight map[cacheKey]*cacheFill
	free     map[int64][][]byte // evicted buffers by capacity, for the next fills
	freeLen  int64
	hits     int64
	misses   int64
	blocks   int64 // misses read as the block alone (thrashing)
	// recent* are hits, misses and whole-piece fills, halved every
	// recentWindow lookups: how the cache does now, not since start.
	recentHits, recentMisses, recentFills int64
	recentFillBlocks                      int64 // blocks in the pieces of recentFills, counted in the asking read's size
	sampled                               int64 // misses since the last whole-piece fill while thrashing
}

type cacheKey struct {
	s     *Storage
	piece int
}

// cacheEntry data is immutable once inserted, so hits copy outside the lock.
// refs counts those copies in progress; an entry evicted while refs > 0 is
// recycled by its last reader instead. Both fields are guarded by c.mu.
type cacheEntry struct {
	key  cacheKey
	data []byte
	refs int
	gone bool
}

// cacheFill is one disk read that concurrent misses wait on. data, entry
// and err are written before done is closed; waiters is guarded by c.mu.
type cacheFill struct {
	done    chan struct{}
	data    []byte
	entry   *cacheEntry // nil when the read was not kept
	err     error
	waiters int
}

// maxFreeBytes bounds the evicted buffers kept for reuse. Seeding a torrent
// larger than the cache refills it all the time; allocating each fill afresh
// made zeroing and GC a fifth of a busy seeder's CPU.
const maxFreeBytes = 16 << 20

// CacheStats is a snapshot of a Cache's occupancy and effectiveness.
type CacheStats struct {
	Bytes   int64 // bytes of piece data held
	Pieces  int   // pieces held
	Hits    int64 // blocks served from memory, including coalesced waits
	Misses  int64 // disk reads performed
	Blocks  int64 // of them, reads of the block alone while the cache thrashed
	Limit   int64
	Pending int // fills in progress
}

// NewCache returns a cache holding at most limit bytes of piece data
// (DefaultCacheSize when limit <= 0). Safe to call from any goroutine.
func NewCache(limit int64) *Cache {
	if limit <= 0 {
		limit = DefaultCacheSize
	}
	return &Cache{limit: limit, entries: map[cacheKey]*list.Element{}, inflight: map[cacheKey]*cacheFill{},
		free: map[int64][][]byte{}}
}

// Stats returns a snapshot. Safe for concurrent use.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.used, Pieces: len(c.entries), Hits: c.hits, Misses: c.misses, Blocks: c.blocks,
		Limit: c.limit, Pending: len(c.inflight)}
}

// ReadBlockCached is ReadBlock served through the Storage's Cache (plain
// ReadBlock when it has none). Intended for uploading to peers: only ask for
// pieces that are complete, or the cache may hold a partially written one
// until the next write to it. Safe for concurrent use; may block on disk.
func (s *Storage) ReadBlockCached(piece int, begin int64, dst []byte) error {
	if s.cache == nil {
		return s.ReadBlock(piece, begin, dst)
	}
	return s.cache.ReadBlock(s, piece, begin, dst)
}

// ReadBlockShared is ReadBlockCached without the copy, for uploads: view
// holds the block's bytes, and while release is non-nil it is a view into
// the cache that stays valid, and unchanged, until release is called (once).
// With release nil the bytes were read into dst and view is dst. Safe for
// concurrent use; may block on disk.
func (s *Storage) ReadBlockShared(piece int, begin int64, dst []byte) (view []byte, release func(), err error) {
	if s.cache == nil {
		return dst, nil, s.ReadBlock(piece, begin, dst)
	}
	view, ce, err := s.cache.read(s, piece, begin, dst)
	if ce != nil {
		return view, func() { s.cache.release(ce) }, nil
	}
	return view, nil, err
}

// ReadBlock fills dst from offset begin of piece of s, reading and caching
// the whole piece on a miss. Safe for concurrent use; may block on disk.
func (c *Cache) ReadBlock(s *Storage, piece int, begin int64, dst []byte) error {
	view, ce, err := c.read(s, piece, begin, dst)
	if ce != nil {
		copy(dst, view)
		c.release(ce)
	}
	return err
}

// read returns len(dst) bytes from offset begin of piece of s. With ce
// non-nil, view lies in that cache entry and the caller holds one of its
// references, to give back with release; otherwise the bytes were copied
// into dst (view is dst) or err says why not.
func (c *Cache) read(s *Storage, piece int, begin int64, dst []byte) (view []byte, ce *cacheEntry, err error) {
	if err := s.checkRange(piece, begin, len(dst)); err != nil {
		return nil, nil, err
	}
	size := s.mi.PieceSize(piece)
	if size > c.limit {
		return dst, nil, s.ReadBlock(piece, begin, dst) // could never be kept
	}
	end := begin + int64(len(dst))
	key := cacheKey{s, piece}
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		c.lru.MoveToFront(e)
		c.hits++
		c.count(true)
		ce := e.Value.(*cacheEntry)
		ce.refs++
		c.mu.Unlock()
		return ce.data[begin:end], ce, nil
	}
	if f := c.inflight[key]; f != nil {
		c.hits++
		c.count(true)
		f.waiters++
		c.mu.Unlock()
		<-f.done
		return c.fromFill(f, begin, dst)
	}
	c.misses++
	c.count(false)
	if c.thrashing() {
		c.blocks++
		c.mu.Unlock()
		return dst, nil, s.ReadBlock(piece, begin, dst)
	}
	c.recentFills++
	c.recentFillBlocks += size / max(int64(len(dst)), 1)
	f := &cacheFill{done: make(chan struct{})}
	c.inflight[key] = f
	gen := s.gen.Load()
	data := c.take(size, s.mi.PieceLength)
	c.mu.Unlock()

	err = s.readPiece(piece, data)

	c.mu.Lock()
	delete(c.inflight, key)
	// A write since we sampled gen may have changed bytes we already read;
	// the copy is still fine for this request but must not be kept.
	if err == nil && s.gen.Load() == gen {
		f.entry = c.insert(key, data, f.waiters+1)
	}
	c.mu.Unlock()
	f.data, f.err = data, err
	close(f.done)
	return c.fromFill(f, begin, dst)
}

// recentWindow is how many lookups the recent hit rate spans, roughly.
const recentWindow = 4096

// thrashSample: while thrashing, one miss in this many still fills its
// whole piece, so that pieces many peers want become hits again and the
// fills can tell when the thrashing is over. A sampled fill reads 64
// blocks for one: at 1 in 8 that was still 9 times the bytes asked for.
const thrashSample = 256

// thrashShare: whole pieces are filled only while each fill serves at
// least one in this many of its piece's blocks (21 of a 1 MiB piece's 64).
// A piece evicted after serving 4 of its 64 blocks still leaves a 75 %
// hit rate while reading 16 times what was asked for.
const thrashShare = 3

// thrashMinFills is the fewest recent fills the cache is judged on.
const thrashMinFills = 8

// count adds a lookup to the recent hit rate. Caller holds c.mu.
func (c *Cache) count(hit bool) {
	if hit {
		c.recentHits++
	} else {
		c.recentMisses++
	}
	if c.recentHits+c.recentMisses > recentWindow {
		c.recentHits /= 2
		c.recentMisses /= 2
		c.recentFills /= 2
		c.recentFillBlocks /= 2
	}
}

// thrashing reports, for a miss, whether to read only the block asked for
// instead of the whole piece: recent fills served fewer than a third of
// their pieces' blocks, so pieces are evicted before most of their blocks
// are asked for (thousands of slow peers each in a different piece), and
// every whole-piece fill reads up to 64 times what was asked. Judged by
// fills rather than by the hit rate, which the block reads keep low: a
// few fast readers each going through pieces of their own after the
// thrashing left it at a fifth (63 hits for each sampled fill, 256 misses
// between) and read every block alone, though each fill they got served
// its whole piece. Caller holds c.mu.
func (c *Cache) thrashing() bool {
	if f := c.recentFills; f < thrashMinFills || thrashShare*(c.recentHits+f) >= c.recentFillBlocks {
		c.sampled = 0
		return false
	}
	c.sampled++
	if c.sampled >= thrashSample {
		c.sampled = 0
		return false
	}
	return true
}

// fromFill is read's answer from a finished fill, for the reader that did
// it and for those who waited on it, each holding one reference to the
// entry when it was kept.
func (c *Cache) fromFill(f *cacheFill, begin int64, dst []byte) ([]byte, *cacheEntry, error) {
	switch {
	case f.err != nil:
		c.release(f.entry)
		return nil, nil, f.err
	case f.entry != nil:
		return f.data[begin : begin+int64(len(dst))], f.entry, nil
	}
	copy(dst, f.data[begin:])
	return dst, nil, nil
}

// take returns a buffer of len size for a fill, reusing an evicted one of
// the torrent's piece length when there is one. Caller holds c.mu.
func (c *Cache) take(size, pieceLength int64) []byte {
	if l := c.free[pieceLength]; len(l) > 0 && pieceLength >= size {
		b := l[len(l)-1]
		c.free[pieceLength] = l[:len(l)-1]
		c.freeLen -= int64(cap(b))
		return b[:size]
	}
	return make([]byte, size, max(size, pieceLength))
}

// release drops one reader of ce (nil: none), recycling an evicted
// entry's buffer after its last reader.
func (c *Cache) release(ce *cacheEntry) {
	if ce == nil {
		return
	}
	c.mu.Lock()
	ce.refs--
	if ce.gone && ce.refs == 0 {
		c.recycle(ce.data)
	}
	c.mu.Unlock()
}

// recycle keeps b for a later fill while under maxFreeBytes. Caller holds c.mu.
func (c *Cache) recycle(b []byte) {
	n := int64(cap(b))
	if c.freeLen+n > maxFreeBytes {
		return
	}
	c.free[n] = append(c.free[n], b)
	c.freeLen += n
}

// insert adds a piece with refs readers already counted and evicts least
// recently used ones beyond the limit. Caller holds c.mu.
func (c *Cache) insert(key cacheKey, data []byte, refs int) *cacheEntry {
	if e := c.entries[key]; e != nil {
		c.remove(e)
	}
	ce := &cacheEntry{key: key, data: data, refs: refs}
	c.entries[key] = c.lru.PushFront(ce)
	c.used += int64(len(data))
	for c.used > c.limit {
		c.remove(c.lru.Back())
	}
	return ce
}

// remove drops one entry; its buffer is recycled now or by its last
// reader. Caller holds c.mu.
func (c *Cache) remove(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.lru.Remove(e)
	delete(c.entries, ce.key)
	c.used -= int64(len(ce.data))
	ce.gone = true
	if ce.refs == 0 {
		c.recycle(ce.data)
	}
}

// invalidate forgets piece of s after a write to it.
func (c *Cache) invalidate(s *Storage, piece int) {
	c.mu.Lock()
	if e := c.entries[cacheKey{s, piece}]; e != nil {
		c.remove(e)
	}
	c.mu.Unlock()
}

// drop forgets every piece of s, so a closed Storage is not kept alive.
func (c *Cache) drop(s *Storage) {
	c.mu.Lock()
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*cacheEntry).key.s == s {
			c.remove(e)
		}
		e = next
	}
	c.mu.Unlock()
}
