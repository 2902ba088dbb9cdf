// Package storage maps torrent pieces onto files on disk.
//
// A torrent session is a single-threaded state machine and must never block
// on disk or SHA-1, so it never calls Storage directly: it submits jobs to a
// Pool, whose workers call Storage and report completion through a callback.
// Storage itself is therefore safe for concurrent use by many workers.
//
// Files are created lazily, by the first write that touches them, and are
// extended sparsely to full length when created. BEP 47 pad files are never
// created; their bytes read as zeros. Zero-length files are created by the
// first successful write of the torrent (or by EnsureEmptyFiles), not at
// Open, so adding a torrent that never downloads leaves no trace on disk.
package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/metainfo"
)

// Options tune a Storage; the zero value is usable.
type Options struct {
	// MaxOpenFiles bounds this torrent's cached descriptors
	// (DefaultMaxOpenFiles when zero).
	MaxOpenFiles int
	// Files is a descriptor cache shared by many torrents, enforcing a
	// process-wide limit. Nil gives the torrent a private cache bounded by
	// MaxOpenFiles.
	Files *FileCache
	// Cache, when set, serves ReadBlockCached. It may be shared.
	Cache *Cache
}

// Storage is the on-disk data of one torrent. All methods are safe for
// concurrent use; they block on disk I/O, so call them from pool workers,
// never from a session loop or an event loop.
type Storage struct {
	mi      *metainfo.MetaInfo
	root    string
	base    string   // root/Name for multi-file torrents, root otherwise
	paths   []string // absolute-or-root-relative path of each file
	files   *fileSet
	cache   *Cache
	gen     atomic.Uint64 // bumped on every write; guards cache fills
	emptyOK atomic.Bool   // zero-length files exist

	// wmu lets one write into this torrent's files at a time. Two pwrites
	// into one ext4 file contend on its inode lock, and the kernel spins
	// for the holder rather than sleeping: perf put 22% of write CPU in
	// rwsem_spin_on_owner with two hash workers writing one file.
	wmu sync.Mutex

	// mu is read-locked by every I/O call and write-locked by Close, so
	// Close waits for running calls and then closes every descriptor.
	mu     sync.RWMutex
	closed bool
}

// Open prepares storage for mi below root without touching the disk.
// Safe to call from any goroutine.
func Open(root string, mi *metainfo.MetaInfo) (*Storage, error) {
	return OpenWith(root, mi, Options{})
}

// OpenWith is Open with options. Safe to call from any goroutine.
func OpenWith(root string, mi *metainfo.MetaInfo, opt Options) (*Storage, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: empty download folder", ErrUnsafePath)
	}
	if err := checkLayout(mi); err != nil {
		return nil, err
	}
	base, paths, err := layout(root, mi)
	if err != nil {
		return nil, err
	}
	limit := opt.MaxOpenFiles
	if limit <= 0 {
		limit = DefaultMaxOpenFiles
	}
	fc := opt.Files
	if fc == nil {
		fc = NewFileCache(limit)
	}
	lengths := make([]int64, len(mi.Files))
	for i, f := range mi.Files {
		lengths[i] = f.Length
	}
	return &Storage{
		mi:    mi,
		root:  filepath.Clean(root),
		base:  base,
		paths: paths,
		files: newFileSet(fc, limit, paths, lengths),
		cache: opt.Cache,
	}, nil
}

// checkLayout rejects a MetaInfo whose numbers disagree, since every later
// offset computation trusts them.
func checkLayout(mi *metainfo.MetaInfo) error {
	if mi == nil || mi.PieceLength <= 0 || len(mi.Files) == 0 || mi.TotalLength < 0 {
		return fmt.Errorf("%w: missing files or piece length", ErrLayout)
	}
	if mi.SingleFile && len(mi.Files) != 1 {
		return fmt.Errorf("%w: single-file torrent with %d files", ErrLayout, len(mi.Files))
	}
	var off int64
	for i, f := range mi.Files {
		if f.Length < 0 || f.Offset != off {
			return fmt.Errorf("%w: file %d at offset %d, expected %d", ErrLayout, i, f.Offset, off)
		}
		off += f.Length
	}
	if off != mi.TotalLength {
		return fmt.Errorf("%w: files total %d bytes, torrent says %d", ErrLayout, off, mi.TotalLength)
	}
	want := (mi.TotalLength + mi.PieceLength - 1) / mi.PieceLength
	if int64(len(mi.Pieces)) != want {
		return fmt.Errorf("%w: %d piece hashes for %d pieces", ErrLayout, len(mi.Pieces), want)
	}
	return nil
}

// MetaInfo returns the torrent this storage serves. Safe for concurrent use.
func (s *Storage) MetaInfo() *metainfo.MetaInfo { return s.mi }

// Path returns the on-disk path of file i. Safe for concurrent use.
func (s *Storage) Path(i int) string { return s.paths[i] }

// Close waits for running I/O calls, then closes every descriptor and drops
// the torrent's cached pieces. Later calls fail with ErrClosed. Safe to call
// from any goroutine, more than once.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.gen.Add(1) // a cache fill racing with us must not insert
	if s.cache != nil {
		s.cache.drop(s)
	}
	return s.files.closeAll()
}

// Remove closes the storage, deletes the torrent's files, then deletes the
// folders its files live in when they are empty, deepest first, up to and
// including root/Name for a multi-file torrent. It never deletes root nor
// anything the torrent does not name. Safe to call from any goroutine; it
// blocks on disk.
func (s *Storage) Remove() error {
	errs := []error{s.Close()}
	dirs := map[string]bool{}
	for i, f := range s.mi.Files {
		if f.Pad {
			continue
		}
		if err := os.Remove(s.paths[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for d := filepath.Dir(s.paths[i]); d != s.base && strings.HasPrefix(d, s.base); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	order := make([]string, 0, len(dirs)+1)
	for d := range dirs {
		order = append(order, d)
	}
	// Longer paths first puts every folder before its parent.
	slices.SortFunc(order, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	if s.base != s.root {
		order = append(order, s.base)
	}
	for _, d := range order {
		// os.Remove refuses non-empty folders, which is exactly the rule:
		// anything else living there keeps its folder alive.
		_ = os.Remove(d)
	}
	return errors.Join(errs...)
}

// EnsureEmptyFiles creates the torrent's zero-length files (and their
// folders). The first successful write does this automatically; a session
// that completes a torrent without writing (all data already present) may
// call it. Safe for concurrent use; blocks on disk.
func (s *Storage) EnsureEmptyFiles() error {
	if s.emptyOK.Load() {
		return nil
	}
	for i, f := range s.mi.Files {
		if f.Length != 0 || f.Pad {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(s.paths[i]), 0o755); err != nil {
			return err
		}
		fh, err := os.OpenFile(s.paths[i], os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	s.emptyOK.Store(true)
	return nil
}

// FileStat is what resume data remembers about one file to decide later
// whether the data can be trusted without rehashing.
type FileStat struct {
	Path    string // relative to the download folder, OS separators
	Size    int64  // -1 when the file does not exist
	ModTime time.Time
}

// FileStats stats every non-pad file, in metainfo order. Safe for concurrent
// use; blocks on disk.
func (s *Storage) FileStats() []FileStat {
	out := make([]FileStat, 0, len(s.paths))
	for i, f := range s.mi.Files {
		if f.Pad {
			continue
		}
		rel, err := filepath.Rel(s.root, s.paths[i])
		if err != nil {
			rel = s.paths[i]
		}
		st := FileStat{Path: rel, Size: -1}
		if fi, err := os.Stat(s.paths[i]); err == nil {
			st.Size, st.ModTime = fi.Size(), fi.ModTime()
		}
		out = append(out, st)
	}
	return out
}

// FilesLookIntact reports whether the files on disk still have exactly the
// sizes and modification times recorded in saved (from FileStats), so
// resume data may be trusted without a recheck. Times are compared to the
// nanosecond: persist them with full precision. Safe for concurrent use;
// blocks on disk.
func (s *Storage) FilesLookIntact(saved []FileStat) bool {
	now := s.FileStats()
	if len(now) != len(saved) {
		return false
	}
	for i := range now {
		a, b := now[i], saved[i]
		if a.Path != b.Path || a.Size != b.Size || !a.ModTime.Equal(b.ModTime) {
			return false
		}
	}
	return true
}
