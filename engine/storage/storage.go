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
// A skipped file (SetSkipped) is never created: its bytes in pieces shared
// with wanted files live in the torrent's part file (parts.go).
//
// # Staying inside the download root
//
// No file of a torrent is created, written, read, stat'ed or deleted
// through a symlink that leads out of the anchor: Options.Root, or the
// torrent's download folder when Root is empty. This holds whatever the
// torrent's names say and whatever appears on disk later, because every
// operation resolves its path from the anchor with openat2(2) and
// RESOLVE_BENEATH, in the same system call that opens the file. Relative
// symlinks that stay inside the anchor are followed, so an operator may
// have dl/movies -> disk2/movies; absolute symlinks are refused even when
// they point inside, because the kernel cannot tell. On kernels without
// openat2 (before 5.6, or when seccomp denies it) paths are walked one
// folder at a time with O_NOFOLLOW, which refuses every symlink.
//
// # Errors
//
// Every error wraps one of the package's Err sentinels or an error from the
// file system. Errors about one file are a *FileError naming it relative to
// the download folder, never by a symlink's target:
//
//   - ErrUnsafePath: the file would be reached through a symlink leaving
//     the anchor (or, from OpenWith, the download folder is not inside
//     Options.Root, or a name in the torrent climbs out).
//   - ErrNotPresent: a read found the file missing or shorter than the
//     torrent says. HashPiece and Recheck report such pieces as absent.
//   - ErrFileChanged: a file held open in the descriptor cache was deleted
//     or truncated by someone else. Checked at most about once a second per
//     descriptor; the descriptor is dropped, so the next call sees the disk
//     as it is. Writes fail too, rather than vanish into a deleted inode.
//     HashPiece and Recheck report such pieces as absent.
package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gotorrentserver/metainfo"
)

// Options tune a Storage; the zero value is usable.
type Options struct {
	// Root is the folder no file of the torrent may leave, whatever its
	// names and whatever symlinks appear on disk: the daemon's download
	// root. The download folder given to OpenWith must be Root or below
	// it. Empty makes that folder itself the limit.
	Root string
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
	dirRel  string // the download folder, below the anchor ("." when it is)
	baseRel string // dirRel/Name for multi-file torrents, dirRel otherwise
	files   *fileSet
	cache   *Cache
	gen     atomic.Uint64 // bumped on every write; guards cache fills
	emptyOK atomic.Bool   // zero-length files exist
	parts   *parts        // skipped files and the part file (parts.go)
	pmu     sync.Mutex    // one decision at a time on where a skipped file lives

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

// Open prepares storage for mi below the download folder dir without
// touching the disk. Safe to call from any goroutine.
func Open(dir string, mi *metainfo.MetaInfo) (*Storage, error) {
	return OpenWith(dir, mi, Options{})
}

// OpenWith is Open with options. It fails with ErrUnsafePath when dir is not
// opt.Root or below it, comparing cleaned absolute paths (a relative one is
// taken against the working directory, now). Whether dir can be reached on
// disk without leaving Root is checked by every later operation instead,
// since links can change at any time. Safe to call from any goroutine.
func OpenWith(dir string, mi *metainfo.MetaInfo, opt Options) (*Storage, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty download folder", ErrUnsafePath)
	}
	if err := checkLayout(mi); err != nil {
		return nil, err
	}
	dir, err := absolute(dir)
	if err != nil {
		return nil, err
	}
	anchor := dir
	if opt.Root != "" {
		if anchor, err = absolute(opt.Root); err != nil {
			return nil, err
		}
		if !within(dir, anchor) {
			return nil, fmt.Errorf("%w: download folder %s is not inside the download root %s", ErrUnsafePath, dir, anchor)
		}
	}
	base, paths, err := layout(dir, mi)
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
	files := &fileSet{
		fc:      fc,
		limit:   limit,
		at:      &beneath{anchor: anchor},
		rels:    make([]string, len(paths)),
		names:   make([]string, len(paths)),
		paths:   paths,
		lengths: make([]int64, len(paths)),
		open:    map[int]*handle{},
	}
	for i, f := range mi.Files {
		files.rels[i] = relTo(anchor, paths[i])
		files.names[i] = relTo(dir, paths[i])
		files.lengths[i] = f.Length
	}
	dirRel := relTo(anchor, dir)
	return &Storage{
		mi:      mi,
		dirRel:  dirRel,
		baseRel: relTo(anchor, base),
		files:   files,
		cache:   opt.Cache,
		parts:   newParts(mi, files, dirRel, dir),
	}, nil
}

// absolute cleans p and makes it absolute with getcwd(2) rather than
// filepath.Abs, whose os.Getwd stats the disk.
func absolute(p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	wd, err := unix.Getwd()
	if err != nil {
		return "", fmt.Errorf("storage: download folder %s: %w", p, err)
	}
	return filepath.Join(wd, p), nil
}

// relTo is p below dir, both clean and absolute, p within dir: "." for dir
// itself.
func relTo(dir, p string) string {
	switch {
	case p == dir:
		return "."
	case dir == "/":
		return p[1:]
	}
	return p[len(dir)+1:]
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

// Path returns where file i lives, for display. Opening that string would
// follow whatever symlinks lie on the way, which the Storage never does.
// Safe for concurrent use.
func (s *Storage) Path(i int) string { return s.files.paths[i] }

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

// pruneDirs removes the folders in dirs that are empty, deepest first, and
// then base when it is not dir (the torrent's own folder, not the download
// folder). rmdir refuses non-empty folders, which is exactly the rule:
// anything else living there keeps its folder alive. It refuses a symlink
// standing in for a folder, too.
func (t *tree) pruneDirs(dirs map[string]bool, base, dir string) {
	order := make([]string, 0, len(dirs)+1)
	for d := range dirs {
		order = append(order, d)
	}
	// Longer paths first puts every folder before its parent.
	slices.SortFunc(order, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	if base != dir {
		order = append(order, base)
	}
	for _, d := range order {
		_ = t.unlink(d, true)
	}
}

// Remove closes the storage, deletes the torrent's files and its part
// file, then deletes the
// folders its files live in when they are empty, deepest first, up to and
// including the download folder's Name for a multi-file torrent. It never
// deletes the download folder nor anything the torrent does not name, and
// nothing through a symlink that leads out of the root: such files are left
// alone and reported with ErrUnsafePath. A symlink at a file's own path is
// removed itself, not its target. Safe to call from any goroutine; it
// blocks on disk.
func (s *Storage) Remove() error {
	errs := []error{s.Close()}
	t, err := s.files.at.openTree(false)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("storage: remove: %w", err))
		}
		return errors.Join(errs...)
	}
	defer t.close()
	dirs := map[string]bool{}
	for i, f := range s.mi.Files {
		if f.Pad {
			continue
		}
		rel := s.files.rels[i]
		if err := t.unlink(rel, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, s.files.fileError(i, "remove", err))
		}
		for d := path.Dir(rel); below(d, s.baseRel); d = path.Dir(d) {
			dirs[d] = true
		}
	}
	if err := t.unlink(s.files.rels[s.parts.idx], false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, s.files.fileError(s.parts.idx, "remove", err))
	}
	t.pruneDirs(dirs, s.baseRel, s.dirRel)
	return errors.Join(errs...)
}

// below reports whether d is strictly inside dir, both below the anchor.
func below(d, dir string) bool {
	if dir == "." {
		return d != "."
	}
	return strings.HasPrefix(d, dir+"/")
}

// EnsureEmptyFiles creates the torrent's zero-length files (and their
// folders). The first successful write does this automatically; a session
// that completes a torrent without writing (all data already present) may
// call it. Errors are *FileError. Safe for concurrent use; blocks on disk.
func (s *Storage) EnsureEmptyFiles() error {
	if s.emptyOK.Load() {
		return nil
	}
	var t *tree
	for i, f := range s.mi.Files {
		if f.Length != 0 || f.Pad || s.parts.skip[i].Load() {
			continue // a skipped file is never created by us
		}
		if t == nil {
			var err error
			if t, err = s.files.at.openTree(true); err != nil {
				return s.files.fileError(i, "create", err)
			}
			defer t.close()
		}
		fd, err := t.create(s.files.rels[i], unix.O_RDWR, 0o644)
		if err != nil {
			return s.files.fileError(i, "create", err)
		}
		if err := unix.Close(fd); err != nil {
			return s.files.fileError(i, "create", err)
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

// FileStats stats every non-pad file, in metainfo order. A file that can
// only be reached through a symlink leaving the root counts as missing.
// Safe for concurrent use; blocks on disk.
func (s *Storage) FileStats() []FileStat {
	out := make([]FileStat, 0, len(s.files.rels))
	t, err := s.files.at.openTree(false)
	if err == nil {
		defer t.close()
	}
	for i, f := range s.mi.Files {
		if f.Pad {
			continue
		}
		st := FileStat{Path: s.files.names[i], Size: -1}
		if t != nil {
			if fi, err := t.stat(s.files.rels[i]); err == nil && fi.Mode&unix.S_IFMT == unix.S_IFREG {
				st.Size, st.ModTime = fi.Size, time.Unix(fi.Mtim.Unix())
			}
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
