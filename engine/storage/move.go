package storage

// Moving a torrent's data to another folder, crash-safe: each file is
// renamed into place (renameat2 with RENAME_NOREPLACE, so a file that
// appeared at the destination is never overwritten), or, across file
// systems, copied to a temporary name beside its destination, synced,
// renamed into place and only then deleted at the source. A file is thus
// whole at one of its two places at every moment, and a move interrupted
// anywhere finishes by running it again (Run with resume): what is at the
// destination and gone from the source counts as moved, what is at both
// lost only its source's unlink.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"gotorrentserver/metainfo"
)

// ErrDestExists: the destination folder already holds a file the move
// would put there, which is not ours to overwrite.
var ErrDestExists = errors.New("storage: the destination already holds a file of that name")

// moveTmpSuffix names a copy in progress beside its destination; a crash
// leaves it behind, and the next run truncates and rewrites it.
const moveTmpSuffix = ".gtsmove"

// Move moves one torrent's files from one download folder to another, both
// beneath the same anchor. Build it with NewMove; its methods block on disk,
// so run them on a lane. Not safe for concurrent use.
type Move struct {
	at       *beneath
	pairs    []movePair
	fromDir  string // anchor-relative
	fromBase string // anchor-relative; Name below fromDir for a multi-file torrent
	toDir    string
	toBase   string
	multi    bool
	toShow   string // the destination folder, for errors
	fromShow string
	moved    []movePair // what Run moved, for Reverse
}

type movePair struct {
	from, to string // anchor-relative
	name     string // relative to the download folder, for errors
}

// NewMove plans moving mi's files from folder from to folder to, both
// absolute and inside root (the download root; "" anchors at their
// deepest common folder). extra names further files relative to the
// download folder (the torrent's part file) moved too when present.
// It touches no disk.
func NewMove(mi *metainfo.MetaInfo, from, to, root string, extra []string) (*Move, error) {
	if err := checkLayout(mi); err != nil {
		return nil, err
	}
	var err error
	if from, err = absolute(from); err != nil {
		return nil, err
	}
	if to, err = absolute(to); err != nil {
		return nil, err
	}
	anchor := commonDir(from, to)
	if root != "" {
		if anchor, err = absolute(root); err != nil {
			return nil, err
		}
		for _, d := range []string{from, to} {
			if !within(d, anchor) {
				return nil, fmt.Errorf("%w: folder %s is not inside the download root %s", ErrUnsafePath, d, anchor)
			}
		}
	}
	fromBase, fromPaths, err := layout(from, mi)
	if err != nil {
		return nil, err
	}
	toBase, toPaths, err := layout(to, mi)
	if err != nil {
		return nil, err
	}
	if !mi.SingleFile && within(to, fromBase) {
		return nil, fmt.Errorf("%w: %s is inside the torrent's own folder", ErrUnsafePath, to)
	}
	m := &Move{at: &beneath{anchor: anchor}, fromDir: relTo(anchor, from), fromBase: relTo(anchor, fromBase),
		toDir: relTo(anchor, to), toBase: relTo(anchor, toBase), multi: !mi.SingleFile, toShow: to, fromShow: from}
	for i, f := range mi.Files {
		if f.Pad {
			continue
		}
		m.pairs = append(m.pairs, movePair{from: relTo(anchor, fromPaths[i]), to: relTo(anchor, toPaths[i]), name: relTo(from, fromPaths[i])})
	}
	for _, name := range extra {
		a, err := safeJoin(from, []string{name})
		if err != nil {
			return nil, err
		}
		b, _ := safeJoin(to, []string{name})
		m.pairs = append(m.pairs, movePair{from: relTo(anchor, a), to: relTo(anchor, b), name: name})
	}
	return m, nil
}

// commonDir is the deepest folder holding both a and b (clean, absolute).
func commonDir(a, b string) string {
	for !within(b, a) {
		a = filepath.Dir(a)
	}
	return a
}

// Conflict reports, wrapping ErrDestExists, the first file the move would
// put where something already is (a file, a folder or a link): a fresh
// move must then touch nothing. A missing anchor is no conflict.
func (m *Move) Conflict() error {
	t, err := m.at.openTree(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: move: %w", err)
	}
	defer t.close()
	if m.multi {
		if st, err := t.lstat(m.toBase); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%w: %s in %s", ErrDestExists, path.Base(m.toBase), m.toShow)
		}
	}
	for _, p := range m.pairs {
		_, err := t.lstat(p.to)
		switch {
		case err == nil:
			return fmt.Errorf("%w: %s in %s", ErrDestExists, p.name, m.toShow)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		default:
			return &FileError{Path: p.name, Err: fmt.Errorf("stat destination: %w", err)}
		}
	}
	return nil
}

// Run moves every file. With resume (finishing a move a crash cut short,
// or undoing a failed one), a file at both places is taken to be moved
// and copied already (a copy reaches its final name only once whole), and
// its source is deleted; without it, such a file fails the move with
// ErrDestExists. Files at neither place (never downloaded) are skipped.
// ctx is checked between files and between copied chunks; a canceled
// move is half done and finishes with another Run. It syncs the folders it
// changed before returning, so a record saying the move is done may follow.
func (m *Move) Run(ctx context.Context, resume bool) error {
	t, err := m.at.openTree(false)
	if err != nil {
		return fmt.Errorf("storage: move: %w", err)
	}
	defer t.close()
	touched := map[string]bool{}
	var errs []error
	for _, p := range m.pairs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		moved, err := m.moveOne(ctx, t, p, resume, touched)
		if moved {
			m.moved = append(m.moved, p)
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	for d := range touched {
		if err := t.syncDir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("storage: move: sync %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Move) moveOne(ctx context.Context, t *tree, p movePair, resume bool, touched map[string]bool) (moved bool, err error) {
	fail := func(op string, err error) error {
		if !errors.Is(err, ErrUnsafePath) {
			err = fmt.Errorf("%s: %w", op, err)
		}
		return &FileError{Path: p.name, Err: err}
	}
	srcDir, srcName := path.Dir(p.from), path.Base(p.from)
	sfd, err := t.open(srcDir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil // never created, or moved with its folder gone
	}
	if err != nil {
		return false, fail("move", err)
	}
	defer unix.Close(sfd)
	var sst unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(sfd, srcName, &sst, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fail("move", err)
	}
	dstDir, dstName := path.Dir(p.to), path.Base(p.to)
	if err := t.mkdirAll(dstDir); err != nil {
		return false, fail("move: create folder", err)
	}
	dfd, err := t.open(dstDir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return false, fail("move", err)
	}
	defer unix.Close(dfd)
	touched[srcDir], touched[dstDir] = true, true
	var dst unix.Stat_t
	switch err := unix.Fstatat(dfd, dstName, &dst, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil && resume:
		return true, m.dropSource(sfd, srcName, fail)
	case err == nil:
		return false, fmt.Errorf("%w: %s in %s", ErrDestExists, p.name, m.toShow)
	case !errors.Is(err, unix.ENOENT):
		return false, fail("move: stat destination", err)
	}
	err = moveRename(sfd, srcName, dfd, dstName)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, fmt.Errorf("%w: %s in %s", ErrDestExists, p.name, m.toShow)
	case !errors.Is(err, unix.EXDEV):
		return false, fail("move: rename", err)
	}
	// Another file system below the anchor: copy, then drop the source.
	if sst.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fail("move", fmt.Errorf("not a regular file, cannot copy it across file systems"))
	}
	if err := copyInto(ctx, sfd, srcName, dfd, dstName, &sst); err != nil {
		return false, fail("move: copy", err)
	}
	// Whole at the destination: undoing must bring it back even if the
	// source's unlink fails.
	return true, m.dropSource(sfd, srcName, fail)
}

func (m *Move) dropSource(sfd int, name string, fail func(string, error) error) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(sfd, name, 0) })
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fail("move: remove source", err)
	}
	return nil
}

// renameNoReplace renames without ever replacing what is at the
// destination; file systems without RENAME_NOREPLACE get a plain rename,
// the destination having been found empty just before.
func renameNoReplace(sfd int, from string, dfd int, to string) error {
	err := ignoringEINTR(func() error { return unix.Renameat2(sfd, from, dfd, to, unix.RENAME_NOREPLACE) })
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = ignoringEINTR(func() error { return unix.Renameat(sfd, from, dfd, to) })
	}
	return err
}

// moveRename moves a file between folders; tests make it fail with EXDEV
// to take the copying path without a second file system.
var moveRename = renameNoReplace

// copyChunk is how much is copied between two looks at the context.
const copyChunk = 64 << 20

// copyInto copies the file name in sfd to a temporary name in dfd, gives
// it the source's mode and times (resume data trusts a complete file by
// its size and modification time), syncs it and renames it to final.
func copyInto(ctx context.Context, sfd int, name string, dfd int, final string, st *unix.Stat_t) error {
	in, err := openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(in), name)
	defer src.Close()
	tmp := "." + final + moveTmpSuffix
	out, err := openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW, st.Mode&0o777)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(out), tmp)
	ok := false
	defer func() {
		if !ok {
			dst.Close()
			unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.CopyN(dst, src, copyChunk)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if n < copyChunk {
			break
		}
	}
	if err := unix.Fchmod(out, st.Mode&0o777); err != nil {
		return err
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, tmp, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if err := dst.Sync(); err != nil {
		return err
	}
	ok = true
	if err := dst.Close(); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	if err := renameNoReplace(dfd, tmp, dfd, final); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	return nil
}

// Reverse is the move back of what Run moved (and of nothing else: a
// file found at the destination is not ours to take), for undoing a move
// that failed part way. Run it with resume.
func (m *Move) Reverse() *Move {
	r := &Move{at: m.at, fromDir: m.toDir, fromBase: m.toBase, toDir: m.fromDir, toBase: m.fromBase,
		multi: m.multi, toShow: m.fromShow, fromShow: m.toShow}
	for _, p := range m.moved {
		r.pairs = append(r.pairs, movePair{from: p.to, to: p.from, name: p.name})
	}
	return r
}

// Prune deletes the source folders the torrent's files lived in when they
// are empty, deepest first, up to the torrent's own folder (Name, for a
// multi-file torrent); never the source download folder itself. Errors
// are ignored: a folder still holding something is simply kept.
func (m *Move) Prune() {
	t, err := m.at.openTree(false)
	if err != nil {
		return
	}
	defer t.close()
	dirs := map[string]bool{}
	for _, p := range m.pairs {
		for d := path.Dir(p.from); below(d, m.fromBase); d = path.Dir(d) {
			dirs[d] = true
		}
	}
	t.pruneDirs(dirs, m.fromBase, m.fromDir)
}

// lstat describes what is at rel without following a link there.
func (t *tree) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	p, name, err := t.parent(rel)
	if err != nil {
		return st, err
	}
	return st, ignoringEINTR(func() error { return unix.Fstatat(p, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
}

// syncDir makes the renames in folder rel durable.
func (t *tree) syncDir(rel string) error {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return ignoringEINTR(func() error { return unix.Fsync(fd) })
}

// MoveExtras names the files beside a torrent's data, relative to its
// download folder, that move with it: its part file
// (.<infohash-hex>.parts, the pieces of skipped files), when present.
func MoveExtras(ih metainfo.Hash) []string {
	return []string{"." + ih.String() + ".parts"}
}
