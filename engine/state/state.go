// Package state keeps the daemon's torrents in a folder so that they come
// back after a restart or a crash: per torrent its .torrent file and a resume
// record (settings, verified pieces, totals, file sizes and times), each
// written atomically (temp file, fsync, rename).
package state

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
)

// ErrCorrupt marks a state file that cannot be used; the daemon reports it
// and goes on with the other torrents.
var ErrCorrupt = errors.New("state: unusable state file")

// Store is a state folder. Save and Remove never block (they queue work for
// one writer goroutine, the latest record per torrent winning); the other
// methods do disk I/O. All methods are safe for concurrent use.
type Store struct {
	dir  string
	lock *os.File // holds the folder's flock until Close
	// applyMu orders the writer's batches against synchronous adds, so a
	// record queued before an add cannot overwrite or delete its files.
	applyMu sync.Mutex
	mu      sync.Mutex
	pending map[metainfo.Hash]*resume.Record // nil value: remove
	wake    chan struct{}
	done    chan struct{}
	closed  bool
	logf    func(string, ...any)
}

// Open creates the folder if needed (mode 0700: it may hold a token), locks
// it against a second daemon and starts the writer.
func Open(dir string, logf func(string, ...any)) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st := &Store{dir: dir, lock: lock, pending: map[metainfo.Hash]*resume.Record{}, wake: make(chan struct{}, 1),
		done: make(chan struct{}), logf: logf}
	go st.writer()
	return st, nil
}

// ErrLocked: another process holds the state folder.
var ErrLocked = errors.New("state: folder in use by another gotorrentserver")

// lockDir takes an exclusive lock on dir/lock for the life of the process
// (the kernel drops it when the process dies, kill -9 included): two
// daemons writing the same resume files would undo each other.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (held by pid %s)", ErrLocked, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("state: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Dir is the state folder.
func (st *Store) Dir() string { return st.dir }

func (st *Store) torrentPath(ih metainfo.Hash) string {
	return filepath.Join(st.dir, ih.String()+".torrent")
}
func (st *Store) resumePath(ih metainfo.Hash) string {
	return filepath.Join(st.dir, ih.String()+".resume")
}

// SaveTorrent writes a torrent's metainfo, synchronously, before the torrent
// is added, so a crash right after an add does not lose it.
func (st *Store) SaveTorrent(mi *metainfo.MetaInfo, raw []byte) error {
	return WriteFileAtomic(st.torrentPath(mi.InfoHash), raw, 0o600)
}

// Save queues r; implements the engine's Persister.
func (st *Store) Save(r resume.Record) {
	st.queue(r.InfoHash, &r)
}

// Remove forgets a torrent; implements the engine's Persister.
func (st *Store) Remove(ih metainfo.Hash) { st.queue(ih, nil) }

func (st *Store) queue(ih metainfo.Hash, r *resume.Record) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		if r == nil {
			st.apply(ih, nil)
		}
		return
	}
	st.pending[ih] = r
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

func (st *Store) writer() {
	defer close(st.done)
	for {
		_, ok := <-st.wake
		st.flush()
		if !ok {
			return
		}
	}
}

func (st *Store) flush() {
	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	st.mu.Lock()
	batch := st.pending
	st.pending = map[metainfo.Hash]*resume.Record{}
	st.mu.Unlock()
	for ih, r := range batch {
		st.apply(ih, r)
	}
}

func (st *Store) apply(ih metainfo.Hash, r *resume.Record) {
	if r == nil {
		os.Remove(st.resumePath(ih))
		os.Remove(st.torrentPath(ih))
		os.Remove(st.magnetPath(ih))
		return
	}
	if err := st.writeResume(ih, r); err != nil {
		st.logf("state: saving %s: %v", ih, err)
	}
}

func (st *Store) writeResume(ih metainfo.Hash, r *resume.Record) error {
	return st.writeRecord(ih, toRecord(r))
}

func (st *Store) writeRecord(ih metainfo.Hash, rec record) error {
	b, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(st.resumePath(ih), b, 0o600)
}

// FlushTorrent writes the record queued for ih, if any, on the caller's
// goroutine: an API call that changed a torrent answers only once its
// record is on disk, so a kill -9 right after the answer keeps the change.
// Only ih's: an add (already durable) must not pay for every other
// torrent's periodic save.
func (st *Store) FlushTorrent(ih metainfo.Hash) {
	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	st.mu.Lock()
	r, ok := st.pending[ih]
	delete(st.pending, ih)
	st.mu.Unlock()
	if ok {
		st.apply(ih, r)
	}
}

// Close writes what is queued and stops the writer.
func (st *Store) Close() {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.closed = true
	st.mu.Unlock()
	close(st.wake)
	<-st.done
	st.lock.Close()
}

// Entry is one saved torrent.
type Entry struct {
	MetaInfo  *metainfo.MetaInfo // nil for a magnet whose metadata never arrived
	Magnet    *metainfo.Magnet
	Resume    resume.Record
	Files     []FileRecord
	HasResume bool
	// ResumeErr says why HasResume is false: the record is missing or
	// unusable, so the torrent's folder and progress are unknown.
	ResumeErr error
}

// Load reads every saved torrent. Unusable ones (a .torrent or .magnet that
// does not parse) are reported in errs (with ErrCorrupt) and skipped; a
// torrent whose resume record is missing or unusable comes back with
// HasResume false and ResumeErr saying why.
func (st *Store) Load() (entries []Entry, errs []error) {
	names, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("state: %w", err)}
	}
	have := map[metainfo.Hash]bool{}
	for _, d := range names {
		name := d.Name()
		if !strings.HasSuffix(name, ".torrent") {
			continue
		}
		e, err := st.load(strings.TrimSuffix(name, ".torrent"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		have[e.MetaInfo.InfoHash] = true
		entries = append(entries, e)
	}
	mags, merrs := st.loadMagnets(have)
	return append(entries, mags...), append(errs, merrs...)
}

func (st *Store) load(hexHash string) (Entry, error) {
	var e Entry
	ih, err := metainfo.ParseHash(hexHash)
	if err != nil {
		return e, fmt.Errorf("%w: %s.torrent: bad name", ErrCorrupt, hexHash)
	}
	raw, err := os.ReadFile(st.torrentPath(ih))
	if err != nil {
		return e, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil || mi.InfoHash != ih {
		return e, fmt.Errorf("%w: %s.torrent: %v", ErrCorrupt, hexHash, err)
	}
	e.MetaInfo = mi
	e.Resume, e.Files, e.ResumeErr = st.loadResume(ih)
	e.HasResume = e.ResumeErr == nil
	return e, nil
}

// loadResume reads a torrent's record; err says why there is none usable
// (missing, truncated, not JSON, no folder).
func (st *Store) loadResume(ih metainfo.Hash) (resume.Record, []FileRecord, error) {
	b, err := os.ReadFile(st.resumePath(ih))
	if errors.Is(err, os.ErrNotExist) {
		return resume.Record{}, nil, errors.New("resume record missing")
	}
	var rec record
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil && rec.Dir == "" {
		err = errors.New("no download folder in it")
	}
	if err != nil {
		return resume.Record{}, nil, fmt.Errorf("resume record unusable: %v", err)
	}
	return rec.resume(ih), rec.Files, nil
}

// record is the on-disk form of a resume record.
type record struct {
	InfoHash   string       `json:"infohash"`
	Dir        string       `json:"dir"`
	MoveTo     string       `json:"move_to,omitempty"`
	Stopped    bool         `json:"stopped"`
	MaxDown    int64        `json:"maxdown"`
	MaxUp      int64        `json:"maxup"`
	Sequential bool         `json:"sequential"`
	Label      string       `json:"label,omitempty"`
	RatioLimit float64      `json:"ratio_limit,omitempty"`
	SeedLimit  int64        `json:"seed_time_limit,omitempty"`
	Priorities []int        `json:"priorities,omitempty"`
	Seeding    int64        `json:"seeding_seconds,omitempty"`
	Trackers   [][]string   `json:"trackers"` // null: the metainfo's; [] when the operator removed them all
	Have       string       `json:"have"`     // hex bitfield
	NumPieces  int          `json:"pieces"`
	Downloaded int64        `json:"downloaded"`
	Uploaded   int64        `json:"uploaded"`
	Added      time.Time    `json:"added"`
	Saved      time.Time    `json:"saved"`
	Files      []FileRecord `json:"files"`
}

// FileRecord is a file's size and modification time when the record was
// written; -1 size means it did not exist.
type FileRecord struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime_ns"`
}

func toRecord(r *resume.Record) record {
	rec := record{InfoHash: r.InfoHash.String(), Dir: r.Dir, Stopped: r.Stopped, MaxDown: r.MaxDown,
		MaxUp: r.MaxUp, Sequential: r.Sequential, Have: hex.EncodeToString(r.Have), NumPieces: r.NumPieces,
		Downloaded: r.Downloaded, Uploaded: r.Uploaded, Added: r.Added.UTC(), Saved: time.Now().UTC(),
		Label: r.Label, RatioLimit: r.RatioLimit, SeedLimit: r.SeedTimeLimit, Seeding: r.SeedingSeconds,
		Trackers: r.Trackers, MoveTo: r.MoveTo}
	for i := 0; i < len(r.Priorities); i++ {
		rec.Priorities = append(rec.Priorities, int(r.Priorities[i]))
	}
	if r.MetaInfo == nil || r.Dir == "" {
		return rec
	}
	// Opening touches no disk; the stats are taken beneath the root.
	if sto, err := storage.OpenWith(r.Dir, r.MetaInfo, storage.Options{Root: r.Root}); err == nil {
		for _, fs := range sto.FileStats() {
			rec.Files = append(rec.Files, FileRecord{Size: fs.Size, ModTime: fs.ModTime.UnixNano()})
		}
	}
	return rec
}

func (rec record) resume(ih metainfo.Hash) resume.Record {
	have, _ := hex.DecodeString(rec.Have)
	prio := make([]byte, len(rec.Priorities))
	for i, p := range rec.Priorities {
		prio[i] = byte(min(max(p, resume.PrioritySkip), resume.PriorityHigh))
	}
	return resume.Record{InfoHash: ih, Settings: resume.Settings{Dir: rec.Dir, Stopped: rec.Stopped, MaxDown: rec.MaxDown, MaxUp: rec.MaxUp,
		Sequential: rec.Sequential, Label: rec.Label, RatioLimit: rec.RatioLimit, SeedTimeLimit: rec.SeedLimit,
		Priorities: string(prio)}, Have: have, NumPieces: rec.NumPieces, Downloaded: rec.Downloaded,
		Uploaded: rec.Uploaded, Added: rec.Added, SeedingSeconds: rec.Seeding, Trackers: rec.Trackers, MoveTo: rec.MoveTo}
}

// WriteFileAtomic writes b to path so that a crash leaves either the old or
// the new content, never a torn file: temp file, fsync, rename, fsync dir.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
