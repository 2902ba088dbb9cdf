package storage

// Every path operation of a Storage starts from a descriptor of its anchor
// folder (Options.Root, or the torrent's download folder) and lets the
// kernel refuse any step that would leave it. Paths used to be joined as
// strings and handed to os.OpenFile and friends, which follow symlinks
// wherever they lead: a link named like a torrent in the download root
// (dl/evil -> /elsewhere) made writes, and then Remove, reach files outside
// the root. Checking the disk first and opening afterwards would not help,
// since a link can be planted between the two, so the refusal has to happen
// inside the same system call that opens, creates, stats or unlinks.

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// beneathResolve makes openat2 fail with EXDEV when resolution would leave
// the starting folder at any step, through ".." or a symlink. It refuses
// absolute symlinks too, even ones whose target lies inside: the kernel
// cannot tell. RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/fd style links,
// which jump to an open file without any path to check.
const beneathResolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

var (
	// errEscape is what the kernel's refusal becomes: the caller adds the
	// torrent's own path, never the link's target.
	errEscape = fmt.Errorf("%w (a symlink leads out of it)", ErrUnsafePath)
	// errSymlink is the fallback walk's refusal, which cannot tell an
	// operator's link inside the root from an attacker's.
	errSymlink = fmt.Errorf("%w (symlinks are refused: the kernel has no openat2)", ErrUnsafePath)
)

// haveOpenat2 reports whether openat2 works here. Kernels before 5.6 lack it
// (ENOSYS) and seccomp profiles older than it often deny it (EPERM). It is
// probed once, with a call that cannot fail otherwise, because EPERM from a
// real open can also mean an immutable file, and falling back for good on
// that would stop following the operator's links for the whole process.
var haveOpenat2 = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == nil {
		unix.Close(fd)
	}
	return err != unix.ENOSYS && err != unix.EPERM
})

// beneath resolves slash-separated paths below one anchor folder. It holds
// no descriptor: each operation opens the anchor afresh (see openTree).
// Holding one per Storage made a file open about 3µs faster (BenchmarkReopen
// 15.0 -> 12.0µs, where the old string-path open took 15.3µs), but opens
// are rare behind the FileCache, and a held anchor per torrent would be a
// descriptor outside the FileCache's process-wide bound, one more thing for
// Close to get right, and would pin a root the operator remounts. Immutable
// after Open, so safe for concurrent use.
type beneath struct {
	// anchor is absolute and cleaned. It is the operator's own setting, so
	// symlinks on the way to it are followed like in any configured path;
	// only what lies below it is the torrent's.
	anchor string
	// walk forces the fallback used without openat2; a test hook.
	walk bool
}

// tree is the anchor opened for one operation or one batch of them. It
// remembers the last parent folder it resolved, because batches (FileStats,
// Remove) go through files in torrent order, where neighbours share a
// folder. Between calls it keeps two descriptors, however many files a
// batch touches. Not safe for concurrent use; close it when done.
type tree struct {
	b       *beneath
	fd      int
	lastDir string
	lastFD  int
}

// openTree opens the anchor. create makes it when missing, as the folder a
// first write goes to: it is the operator's path, not the torrent's, so
// os.MkdirAll's following of symlinks is what the operator configured.
func (b *beneath) openTree(create bool) (*tree, error) {
	fd, err := openat(unix.AT_FDCWD, b.anchor, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == unix.ENOENT && create {
		if err := os.MkdirAll(b.anchor, 0o755); err != nil {
			return nil, err
		}
		fd, err = openat(unix.AT_FDCWD, b.anchor, unix.O_PATH|unix.O_DIRECTORY, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: b.anchor, Err: err}
	}
	return &tree{b: b, fd: fd, lastFD: -1}, nil
}

func (t *tree) close() {
	if t.lastFD >= 0 {
		unix.Close(t.lastFD)
	}
	unix.Close(t.fd)
}

// open opens rel, a path below the anchor, with open(2) flags. Symlinks that
// stay below the anchor are followed with openat2; without it every symlink
// is refused.
func (t *tree) open(rel string, flags int, mode uint32) (int, error) {
	flags |= unix.O_CLOEXEC
	if flags&unix.O_CREAT == 0 {
		mode = 0 // openat2 rejects a mode without O_CREAT
	}
	if t.b.walk || !haveOpenat2() {
		return walk(t.fd, rel, flags, mode)
	}
	how := unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode), Resolve: beneathResolve}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(t.fd, rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR, err == unix.EAGAIN && tries < 8:
			// EAGAIN: a rename raced with a ".." in a link; the kernel
			// could not prove the walk stayed below and asks to retry.
			continue
		case err == unix.EXDEV, err == unix.ELOOP:
			return -1, errEscape
		}
		return -1, err
	}
}

// walk is open for kernels without openat2: one folder at a time, each
// opened with O_NOFOLLOW relative to the previous one, the last component
// too. It refuses every symlink, including an operator's link inside the
// root; that is the price of not having the kernel check where links lead.
func walk(dirfd int, rel string, flags int, mode uint32) (int, error) {
	comps := strings.Split(rel, "/")
	fd := dirfd
	defer func() {
		if fd != dirfd {
			unix.Close(fd)
		}
	}()
	for _, c := range comps[:len(comps)-1] {
		next, err := openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err == unix.ENOTDIR && isSymlink(fd, c) {
			err = errSymlink
		}
		if err != nil {
			return -1, err
		}
		if fd != dirfd {
			unix.Close(fd)
		}
		fd = next
	}
	last := comps[len(comps)-1]
	out, err := openat(fd, last, flags|unix.O_NOFOLLOW, mode)
	switch {
	case err == unix.ELOOP, err == unix.ENOTDIR && isSymlink(fd, last):
		return -1, errSymlink
	case err != nil:
		return -1, err
	}
	if flags&unix.O_PATH != 0 && flags&unix.O_DIRECTORY == 0 {
		// O_PATH|O_NOFOLLOW opens a symlink itself instead of failing.
		var st unix.Stat_t
		if unix.Fstat(out, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(out)
			return -1, errSymlink
		}
	}
	return out, nil
}

func isSymlink(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// create opens rel with O_CREAT, making missing folders first.
func (t *tree) create(rel string, flags int, mode uint32) (int, error) {
	fd, err := t.open(rel, flags|unix.O_CREAT, mode)
	if err == unix.ENOENT {
		if err = t.mkdirAll(path.Dir(rel)); err == nil {
			fd, err = t.open(rel, flags|unix.O_CREAT, mode)
		}
	}
	return fd, err
}

// mkdirAll makes the missing folders of dir one component at a time: each
// mkdirat runs on its parent's descriptor, itself resolved below the
// anchor, so a folder is never created through a link that leaves it.
// Each prefix is resolved from the anchor, not from its parent, so that an
// operator's link to a sibling folder inside the root is still followed.
func (t *tree) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	comps := strings.Split(dir, "/")
	parent := t.fd
	defer func() {
		if parent != t.fd {
			unix.Close(parent)
		}
	}()
	for i, c := range comps {
		prefix := strings.Join(comps[:i+1], "/")
		fd, err := t.open(prefix, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err == unix.ENOENT {
			if err = unix.Mkdirat(parent, c, 0o755); err == nil || err == unix.EEXIST {
				fd, err = t.open(prefix, unix.O_PATH|unix.O_DIRECTORY, 0)
			}
		}
		if err != nil {
			return err
		}
		if parent != t.fd {
			unix.Close(parent)
		}
		parent = fd
	}
	return nil
}

// parent resolves the folder holding rel below the anchor and returns its
// descriptor, owned by t, with rel's last component.
func (t *tree) parent(rel string) (int, string, error) {
	dir, name := path.Dir(rel), path.Base(rel)
	if dir == "." {
		return t.fd, name, nil
	}
	if dir == t.lastDir && t.lastFD >= 0 {
		return t.lastFD, name, nil
	}
	fd, err := t.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", err
	}
	if t.lastFD >= 0 {
		unix.Close(t.lastFD)
	}
	t.lastDir, t.lastFD = dir, fd
	return fd, name, nil
}

// unlink removes the file (or, with dir, the empty folder) at rel. A
// symlink sitting there is removed itself, never its target, and it stays
// inside the root since its parent was resolved there.
func (t *tree) unlink(rel string, dir bool) error {
	p, name, err := t.parent(rel)
	if err != nil {
		return err
	}
	flags := 0
	if dir {
		flags = unix.AT_REMOVEDIR
	}
	return ignoringEINTR(func() error { return unix.Unlinkat(p, name, flags) })
}

// stat describes the file at rel. A symlink there is followed like open
// follows it, so that the sizes resume data records are those of the bytes
// reads see, and refused when it leaves the root.
func (t *tree) stat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	p, name, err := t.parent(rel)
	if err != nil {
		return st, err
	}
	if err := ignoringEINTR(func() error { return unix.Fstatat(p, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return st, nil
	}
	fd, err := t.open(rel, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// openat retries EINTR, which network and FUSE file systems return when a
// signal (the Go runtime sends many) interrupts a slow open.
func openat(dirfd int, p string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, p, flags|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// within reports whether the cleaned absolute path p is dir or below it,
// by components: /data/dl2 is not below /data/dl.
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
