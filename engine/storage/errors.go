package storage

import (
	"errors"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them (or an
// *os.PathError or errno from the file system), so callers can branch with
// errors.Is. Errors about one file of the torrent are also a *FileError,
// which names it.
var (
	// ErrClosed: the Storage was closed or removed.
	ErrClosed = errors.New("storage: closed")
	// ErrRange: a piece index or block range outside the torrent. Peers
	// choose these numbers, so the session should treat it as a protocol
	// violation rather than a disk problem.
	ErrRange = errors.New("storage: block outside the torrent")
	// ErrLayout: the MetaInfo's file table is inconsistent with its length
	// or piece count.
	ErrLayout = errors.New("storage: inconsistent torrent layout")
	// ErrUnsafePath: a file would land outside the download root, by its
	// name in the torrent, by a download folder outside Options.Root, or
	// by a symlink on disk that leads out of the root.
	ErrUnsafePath = errors.New("storage: file path escapes the download folder")
	// ErrNotPresent: the bytes asked for are not on disk yet (file missing
	// or shorter than the torrent says).
	ErrNotPresent = errors.New("storage: data not on disk")
	// ErrFileChanged: a file this Storage held open was deleted or
	// truncated by someone else. The descriptor is dropped, so the next
	// call sees the disk as it is now.
	ErrFileChanged = errors.New("storage: file changed on disk while open")
	// ErrSkipped: bytes of a skipped file that no wanted piece needs were
	// not stored (see parts.go). The session hashed a piece that stopped
	// being wanted meanwhile; dropping the piece quietly is the answer.
	ErrSkipped = errors.New("storage: file skipped")
	// ErrPoolClosed: a job was submitted to a closed pool.
	ErrPoolClosed = errors.New("storage: pool closed")
	// ErrCanceled: a queued job was dropped by Pool.Cancel before it ran.
	ErrCanceled = errors.New("storage: job canceled")
)

// FileError is an error about one file of a torrent, so that a caller can
// tell the user which file is missing, changed or refused. Err wraps the
// sentinel (ErrNotPresent, ErrFileChanged, ErrUnsafePath) or the file
// system's error.
type FileError struct {
	// Path is the file's path relative to the torrent's download folder
	// (the folder given to Open), with OS separators: the path the torrent
	// names, never where a symlink points.
	Path string
	Err  error
}

func (e *FileError) Error() string {
	// Err usually starts with a sentinel's own "storage: "; saying it
	// twice around the path reads badly in a log line.
	return "storage: " + e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "storage: ")
}

func (e *FileError) Unwrap() error { return e.Err }
