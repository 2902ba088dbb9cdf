package storage

import "errors"

// Sentinel errors. Every error this package returns wraps one of them (or an
// *os.PathError from the file system), so callers can branch with errors.Is.
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
	// ErrUnsafePath: a file would land outside the download folder.
	ErrUnsafePath = errors.New("storage: file path escapes the download folder")
	// ErrNotPresent: the bytes asked for are not on disk yet (file missing
	// or shorter than the torrent says).
	ErrNotPresent = errors.New("storage: data not on disk")
	// ErrPoolClosed: a job was submitted to a closed pool.
	ErrPoolClosed = errors.New("storage: pool closed")
	// ErrCanceled: a queued job was dropped by Pool.Cancel before it ran.
	ErrCanceled = errors.New("storage: job canceled")
)
