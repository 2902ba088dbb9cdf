package storage

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gotorrentserver/metainfo"
)

// DefaultMaxOpenFiles is the per-torrent descriptor bound used when
// Options.MaxOpenFiles is zero. Pieces rarely straddle more than a few files,
// so a handful of cached descriptors already avoids nearly all reopening.
const DefaultMaxOpenFiles = 16

// layout computes where each file of mi lives, as strings: a single-file
// torrent is root/Name; a multi-file torrent is root/Name/<components>.
// base is the folder Remove may prune up to (root itself for a single-file
// torrent, which is never removed). These names are only ever opened
// through a tree (beneath.go), since the disk may hold symlinks that lead
// anywhere.
func layout(root string, mi *metainfo.MetaInfo) (base string, paths []string, err error) {
	root = filepath.Clean(root)
	base = root
	if !mi.SingleFile {
		if base, err = safeJoin(root, []string{mi.Name}); err != nil {
			return "", nil, err
		}
	}
	paths = make([]string, len(mi.Files))
	for i, f := range mi.Files {
		if paths[i], err = safeJoin(base, f.Path); err != nil {
			return "", nil, err
		}
	}
	return base, paths, nil
}

// safeJoin joins components below dir. metainfo already rejects "..", but
// a torrent's names come from strangers, so it checks again and also
// verifies the cleaned result is strictly inside dir: the kernel's checks
// (beneath.go) stop links on disk, not names that climb out by themselves.
func safeJoin(dir string, comps []string) (string, error) {
	if len(comps) == 0 {
		return "", fmt.Errorf("%w: empty path", ErrUnsafePath)
	}
	for _, c := range comps {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\\x00") {
			return "", fmt.Errorf("%w: component %q", ErrUnsafePath, c)
		}
	}
	p := filepath.Join(append([]string{dir}, comps...)...)
	prefix := dir
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	if !strings.HasPrefix(p, prefix) {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, p)
	}
	return p, nil
}

// FileCache bounds the descriptors held open by every Storage sharing it and
// evicts the least recently used idle one when over the limit. A descriptor
// in use by an I/O call is never closed under it; the limit may then be
// exceeded briefly, by at most one descriptor per concurrent I/O call.
// All methods are safe for concurrent use.
type FileCache struct {
	mu    sync.Mutex
	limit int
	open  int       // descriptors open, including detached ones still in use
	lru   list.List // of *handle, front = most recently used
	// liveEvery spaces the checks that a cached file is still on disk;
	// tests lower it to check on every use.
	liveEvery time.Duration
}

// NewFileCache returns a cache allowing limit open descriptors in total.
// Safe to call from any goroutine.
func NewFileCache(limit int) *FileCache {
	return &FileCache{limit: max(limit, 1), liveEvery: time.Second}
}

// OpenFiles reports how many descriptors are open right now. Safe for
// concurrent use.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// handle is one cached descriptor. Guarded by FileCache.mu except f, fd and
// size, which are immutable once the handle is published.
type handle struct {
	set      *fileSet
	idx      int
	f        *os.File
	fd       int   // f's descriptor, for fstat without f.Fd's side effects
	size     int64 // the file's size when opened, capped at its length
	writable bool
	refs     int
	detached bool          // out of the cache; closed when refs drops to zero
	checked  time.Duration // monotonic time of the last liveness check
	gel, sel *list.Element
}

// fileSet is one Storage's view of a FileCache: its paths and its own
// per-torrent bound. All mutable fields are guarded by fc.mu; at, rels,
// names, paths and lengths are immutable.
type fileSet struct {
	fc      *FileCache
	limit   int
	at      *beneath
	rels    []string // below the anchor, slash-separated: what is opened
	names   []string // below the download folder: what errors show
	paths   []string // absolute: names the *os.File for its own errors
	lengths []int64
	open    map[int]*handle
	lru     list.List // of *handle, front = most recently used
}

// epoch makes monotonic cheap: time.Since on a time with a monotonic reading
// is one vDSO clock read, and never jumps with the wall clock.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// acquire returns a referenced descriptor for file idx, opening it if needed.
// write asks for a writable descriptor and creates the file (and its
// folders) when missing. Callers must release the handle promptly: holding
// it pins the descriptor. Errors are *FileError.
func (s *fileSet) acquire(idx int, write bool) (*handle, error) {
	fc := s.fc
	now := monotonic()
	fc.mu.Lock()
	if h := s.open[idx]; h != nil && (h.writable || !write) {
		s.touch(h)
		check := now-h.checked >= fc.liveEvery
		if check {
			h.checked = now
		}
		fc.mu.Unlock()
		if check {
			if err := s.checkLive(h); err != nil {
				s.discard(h)
				return nil, err
			}
		}
		return h, nil
	}
	fc.mu.Unlock()

	// Open outside the lock: a slow disk must not stall other torrents.
	h, err := s.openFile(idx, write)
	if err != nil {
		return nil, err
	}
	var victims []*os.File
	fc.mu.Lock()
	if old := s.open[idx]; old != nil {
		if old.writable || !write { // another worker won the race
			s.touch(old)
			fc.mu.Unlock()
			h.f.Close()
			return old, nil
		}
		victims = s.detach(old, victims) // read-only; replaced by ours
	}
	h.refs, h.checked = 1, now
	h.gel = fc.lru.PushFront(h)
	h.sel = s.lru.PushFront(h)
	s.open[idx] = h
	fc.open++
	victims = s.evict(victims)
	fc.mu.Unlock()
	closeAll(victims)
	return h, nil
}

// checkLive fails when the file behind a cached descriptor was deleted or
// cut short since it was opened. Reads would otherwise serve a deleted
// file's old bytes, and writes into it would vanish without an error, for
// as long as the descriptor stays cached.
func (s *fileSet) checkLive(h *handle) error {
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return s.fileError(h.idx, "stat", err)
	}
	switch {
	case st.Nlink == 0:
		return &FileError{Path: s.names[h.idx], Err: fmt.Errorf("%w: deleted", ErrFileChanged)}
	case st.Size < h.size:
		return &FileError{Path: s.names[h.idx], Err: fmt.Errorf("%w: truncated from %d to %d bytes", ErrFileChanged, h.size, st.Size)}
	}
	return nil
}

// discard takes h, referenced by the caller, out of the cache and drops
// that reference, which closes it unless another call still uses it.
func (s *fileSet) discard(h *handle) {
	s.fc.mu.Lock()
	if s.open[h.idx] == h {
		s.detach(h, nil) // referenced, so not queued for closing here
	}
	s.fc.mu.Unlock()
	s.release(h)
}

// touch takes a reference and marks h most recently used. Caller holds fc.mu.
func (s *fileSet) touch(h *handle) {
	h.refs++
	s.fc.lru.MoveToFront(h.gel)
	s.lru.MoveToFront(h.sel)
}

// release drops a reference taken by acquire.
func (s *fileSet) release(h *handle) {
	var victims []*os.File
	s.fc.mu.Lock()
	h.refs--
	if h.detached {
		if h.refs == 0 {
			s.fc.open--
			victims = append(victims, h.f)
		}
	} else {
		victims = s.evict(victims) // the limit may have been exceeded while h was busy
	}
	s.fc.mu.Unlock()
	closeAll(victims)
}

// evict detaches idle handles, least recent first, until both the
// per-torrent and the shared bound hold. Caller holds fc.mu.
func (s *fileSet) evict(victims []*os.File) []*os.File {
	for e := s.lru.Back(); e != nil && len(s.open) > s.limit; {
		prev := e.Prev()
		if h := e.Value.(*handle); h.refs == 0 {
			victims = s.detach(h, victims)
		}
		e = prev
	}
	fc := s.fc
	for e := fc.lru.Back(); e != nil && fc.open > fc.limit; {
		prev := e.Prev()
		if h := e.Value.(*handle); h.refs == 0 {
			victims = h.set.detach(h, victims)
		}
		e = prev
	}
	return victims
}

// detach takes h out of the cache. An idle descriptor is queued for closing
// at once; a busy one is closed by its last release. Caller holds fc.mu.
func (s *fileSet) detach(h *handle, victims []*os.File) []*os.File {
	delete(s.open, h.idx)
	s.fc.lru.Remove(h.gel)
	s.lru.Remove(h.sel)
	h.detached = true
	if h.refs == 0 {
		s.fc.open--
		victims = append(victims, h.f)
	}
	return victims
}

// closeAll detaches every handle of this set and closes the idle ones.
// Storage.Close calls it only once no I/O call is running, so in practice
// every descriptor is closed before it returns.
func (s *fileSet) closeAll() error {
	var victims []*os.File
	s.fc.mu.Lock()
	for _, h := range s.open {
		victims = s.detach(h, victims)
	}
	s.fc.mu.Unlock()
	return closeAll(victims)
}

func closeAll(files []*os.File) error {
	var errs []error
	for _, f := range files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// openFile opens file idx below the anchor, returning an unpublished
// handle. For writing it creates the file and its folders and extends it to
// its full length: extending is sparse on the file systems seedboxes use,
// and it means reads of not-yet-written holes see zeros instead of a short
// file. For reading it prefers read-write, so the same descriptor can serve
// later writes, and falls back to read-only for data on read-only media or
// owned by someone else. Errors are *FileError; a missing file when
// reading wraps ErrNotPresent.
func (s *fileSet) openFile(idx int, write bool) (*handle, error) {
	t, err := s.at.openTree(write)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &FileError{Path: s.names[idx], Err: fmt.Errorf("%w: %w", ErrNotPresent, err)}
	}
	op := "open for read"
	if write {
		op = "open for write"
	}
	if err != nil {
		return nil, s.fileError(idx, op, err)
	}
	defer t.close()
	rel := s.rels[idx]
	var fd int
	writable := true
	if write {
		fd, err = t.create(rel, unix.O_RDWR, 0o644)
	} else {
		fd, err = t.open(rel, unix.O_RDWR, 0)
		if err == unix.EACCES || err == unix.EPERM || err == unix.EROFS {
			fd, err = t.open(rel, unix.O_RDONLY, 0)
			writable = false
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &FileError{Path: s.names[idx], Err: fmt.Errorf("%w: %w", ErrNotPresent, err)}
		}
	}
	if err != nil {
		return nil, s.fileError(idx, op, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	switch {
	case err != nil:
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		// A FIFO or device planted at a file's path would hang or feed
		// a worker forever.
		err = errors.New("not a regular file")
	case write && st.Size < s.lengths[idx]:
		err = ignoringEINTR(func() error { return unix.Ftruncate(fd, s.lengths[idx]) })
		st.Size = s.lengths[idx]
	}
	if err != nil {
		unix.Close(fd)
		return nil, s.fileError(idx, op, err)
	}
	return &handle{
		set:      s,
		idx:      idx,
		f:        os.NewFile(uintptr(fd), s.paths[idx]),
		fd:       fd,
		size:     min(st.Size, s.lengths[idx]),
		writable: writable,
	}, nil
}

// fileError names file idx in err. A path refused by resolution already
// says what happened; anything else gets op.
func (s *fileSet) fileError(idx int, op string, err error) error {
	if !errors.Is(err, ErrUnsafePath) {
		err = fmt.Errorf("%s: %w", op, err)
	}
	return &FileError{Path: s.names[idx], Err: err}
}
