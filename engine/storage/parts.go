package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gotorrentserver/metainfo"
)

// # Skipped files and the part file
//
// A file the user skipped is never created by us. Its bytes that belong to
// a wanted piece (a piece shared with a neighbouring wanted file) go to the
// torrent's part file instead, `<download folder>/.<infohash-hex>.parts`
// (libtorrent's name), and are read back from there for hashing, uploading
// and rechecks.
//
// The part file needs no index: it has one slot per piece that touches two
// or more non-pad files (only those can be wanted while holding bytes of a
// skipped file), in piece order, slot k at k*PieceLength, each byte at its
// offset within the piece. It is sized to all its slots on first write and
// sparse, so it takes on disk only the bytes of skipped files in boundary
// pieces: at most two pieces per file. Because the layout follows from the
// torrent alone it is never torn by a crash; a slot's bytes count only
// while the piece is verified, like any file's.
//
// Where a file's bytes live is decided per file, once: a wanted file is
// real; a skipped one is real when it exists on disk (it was downloaded
// before being skipped: its data stays and stays usable), else it lives in
// the part file. When a file living in the part file is wanted again,
// Settle (or the first write touching it) copies its bytes out of the part
// file into the real file, which from then on holds them; the part file's
// copy is left, and goes with the torrent's removal.

// Location of a file's bytes.
const (
	locUnknown uint32 = iota // not decided yet (wanted: real; skipped: look)
	locReal                  // the file itself
	locPart                  // the part file's slots
	locLook                  // wanted again before it was decided: look
)

// parts is a Storage's part-file bookkeeping. slots and idx are
// immutable; skip and loc are atomics read by every I/O call.
type parts struct {
	slots   []int32 // the pieces with a slot, ascending
	idx     int     // the part file's index in fileSet (after mi.Files)
	skip    []atomic.Bool
	loc     []atomic.Uint32
	anySkip atomic.Bool // some file skipped or living in the part file
}

// PartFileName is the part file's name in a torrent's download folder.
func PartFileName(ih metainfo.Hash) string { return "." + ih.String() + ".parts" }

// boundaryPieces lists the pieces touching two or more non-pad files.
func boundaryPieces(mi *metainfo.MetaInfo) []int32 {
	var out []int32
	last := int32(-1)
	for i, f := range mi.Files {
		if f.Pad || f.Length == 0 {
			continue
		}
		first, end := mi.FilePieces(i)
		for _, p := range []int{first, end} {
			if int32(p) <= last || !touchesOthers(mi, p, i) {
				continue
			}
			out = append(out, int32(p))
			last = int32(p)
		}
	}
	return out
}

// touchesOthers reports whether piece p holds bytes of a non-pad file
// other than file fi.
func touchesOthers(mi *metainfo.MetaInfo, p, fi int) bool {
	for _, sp := range mi.PieceSpans(p) {
		if !sp.Pad && sp.File != fi {
			return true
		}
	}
	return false
}

// newParts builds the bookkeeping and registers the part file in files.
func newParts(mi *metainfo.MetaInfo, files *fileSet, dirRel, dir string) *parts {
	p := &parts{
		slots: boundaryPieces(mi),
		idx:   len(mi.Files),
		skip:  make([]atomic.Bool, len(mi.Files)),
		loc:   make([]atomic.Uint32, len(mi.Files)),
	}
	name := PartFileName(mi.InfoHash)
	files.rels = append(files.rels, path.Join(dirRel, name))
	files.names = append(files.names, name)
	files.paths = append(files.paths, dir+"/"+name)
	files.lengths = append(files.lengths, int64(len(p.slots))*mi.PieceLength)
	return p
}

// slot is piece's slot in the part file, or -1.
func (p *parts) slot(piece int) int {
	k := sort.Search(len(p.slots), func(i int) bool { return p.slots[i] >= int32(piece) })
	if k < len(p.slots) && p.slots[k] == int32(piece) {
		return k
	}
	return -1
}

// SetSkipped says which files (by index in the MetaInfo's Files) are
// skipped. It touches no disk: a skipped file's location is decided by the
// first I/O call that needs it, and a file wanted again is moved out of the
// part file by Settle or by the first write into it. Safe for concurrent
// use; call Settle on a worker after a file became wanted.
func (s *Storage) SetSkipped(skip []bool) {
	any := false
	for i := range s.parts.skip {
		on := i < len(skip) && skip[i] && !s.mi.Files[i].Pad
		if s.parts.skip[i].Swap(on) && !on {
			s.emptyOK.Store(false) // a zero-length file may now be due
			// Skipped until now and never looked at (since a restart,
			// say): its bytes may be in the part file, so look before
			// taking the file as their home.
			s.parts.loc[i].CompareAndSwap(locUnknown, locLook)
		}
		any = any || on || s.parts.loc[i].Load() == locPart
	}
	if any {
		s.parts.anySkip.Store(true)
	}
}

// Skipped reports whether file i was skipped by SetSkipped. Safe for
// concurrent use.
func (s *Storage) Skipped(i int) bool { return s.parts.skip[i].Load() }

// inPart decides whether file fi's bytes are in the part file. Caller
// holds s.mu read-locked.
func (s *Storage) inPart(fi int) (bool, error) {
	if !s.parts.anySkip.Load() {
		return false, nil
	}
	switch s.parts.loc[fi].Load() {
	case locReal:
		return false, nil
	case locPart:
		return true, nil
	case locUnknown:
		if !s.parts.skip[fi].Load() {
			return false, nil
		}
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if l := s.parts.loc[fi].Load(); l == locReal || l == locPart {
		return l == locPart, nil
	}
	exists, err := s.exists(fi)
	if err != nil {
		return false, err
	}
	l := locPart
	if exists {
		l = locReal
	}
	s.parts.loc[fi].Store(l)
	return l == locPart, nil
}

// exists stats file fi beneath the anchor.
func (s *Storage) exists(fi int) (bool, error) {
	t, err := s.files.at.openTree(false)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, s.files.fileError(fi, "stat", err)
	}
	defer t.close()
	_, err = t.stat(s.files.rels[fi])
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR):
		return false, nil
	}
	return false, s.files.fileError(fi, "stat", err)
}

// partOffset maps torrent offset off of a file living in the part file to
// its place there, or fails: no slot holds that piece.
func (s *Storage) partOffset(off int64) (int64, error) {
	piece := int(off / s.mi.PieceLength)
	k := s.parts.slot(piece)
	if k < 0 {
		return 0, ErrSkipped
	}
	return int64(k)*s.mi.PieceLength + off - int64(piece)*s.mi.PieceLength, nil
}

// Settle moves the bytes of every wanted file still living in the part
// file into the file itself (creating it). Safe for concurrent use; blocks
// on disk.
func (s *Storage) Settle() error {
	if !s.parts.anySkip.Load() {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for fi := range s.parts.loc {
		if s.parts.skip[fi].Load() || s.parts.loc[fi].Load() == locReal || s.parts.loc[fi].Load() == locUnknown {
			continue
		}
		part, err := s.inPart(fi) // decides a file to look at
		if err != nil {
			return err
		}
		if part {
			if err := s.unpart(fi); err != nil {
				return err
			}
		}
	}
	if !s.emptyOK.Load() {
		return s.EnsureEmptyFiles()
	}
	return nil
}

// unpart copies file fi's bytes from the part file's slots into the file
// and makes the file their home. Caller holds s.mu read-locked and s.wmu.
func (s *Storage) unpart(fi int) error {
	f := s.mi.Files[fi]
	h, err := s.files.acquire(fi, true)
	if err != nil {
		return err
	}
	defer s.files.release(h)
	first, last := s.mi.FilePieces(fi)
	ends := []int{first}
	if last > first {
		ends = append(ends, last)
	}
	for _, piece := range ends {
		k := s.parts.slot(piece)
		if k < 0 {
			continue
		}
		start := max(int64(piece)*s.mi.PieceLength, f.Offset)
		end := min(int64(piece)*s.mi.PieceLength+s.mi.PieceSize(piece), f.Offset+f.Length)
		buf := make([]byte, end-start)
		n, err := s.readPart(int64(k)*s.mi.PieceLength+start-int64(piece)*s.mi.PieceLength, buf)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if _, err := h.f.WriteAt(buf[:n], start-f.Offset); err != nil {
			return s.files.fileError(fi, "write", err)
		}
	}
	s.parts.loc[fi].Store(locReal)
	return nil
}

// readPart reads what the part file holds at off, up to len(buf): a part
// file missing or shorter reads as less.
func (s *Storage) readPart(off int64, buf []byte) (int, error) {
	h, err := s.files.acquire(s.parts.idx, false)
	if errors.Is(err, ErrNotPresent) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer s.files.release(h)
	n, err := h.f.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return n, s.files.fileError(s.parts.idx, "read", err)
	}
	return n, nil
}

// PartStat stats the part file (Size -1 when it does not exist). Safe for
// concurrent use; blocks on disk.
func (s *Storage) PartStat() FileStat {
	st := FileStat{Path: s.files.names[s.parts.idx], Size: -1}
	t, err := s.files.at.openTree(false)
	if err != nil {
		return st
	}
	defer t.close()
	if fi, err := t.stat(s.files.rels[s.parts.idx]); err == nil && fi.Mode&unix.S_IFMT == unix.S_IFREG {
		st.Size, st.ModTime = fi.Size, time.Unix(fi.Mtim.Unix())
	}
	return st
}

// PartSize is the part file's full size: every slot.
func (s *Storage) PartSize() int64 { return s.files.lengths[s.parts.idx] }

// HasSlot reports whether piece has a slot in the part file (it touches two
// or more files). Safe for concurrent use.
func (s *Storage) HasSlot(piece int) bool { return s.parts.slot(piece) >= 0 }

// errPart names file fi in an error about its bytes in the part file.
func (s *Storage) errPart(fi int, err error) error {
	if errors.Is(err, ErrSkipped) {
		return &FileError{Path: s.files.names[fi], Err: fmt.Errorf("%w: not kept by any wanted piece", ErrSkipped)}
	}
	return err
}
