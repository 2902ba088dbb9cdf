package engine

import "errors"

// Sentinel errors of the engine.
var (
	// ErrExists: the torrent is already added; the existing one is untouched.
	ErrExists = errors.New("engine: torrent already added")
	// ErrNotFound: no torrent with that infohash.
	ErrNotFound = errors.New("engine: unknown torrent")
	// ErrNoMetadata: the torrent is a magnet whose info dict is not known
	// yet, so there is nothing to check.
	ErrNoMetadata = errors.New("engine: metadata not fetched yet")
	// ErrBusy: the torrent is being moved or checked; try again after.
	ErrBusy = errors.New("engine: torrent busy")
	// ErrMoveTarget: the destination of a move already holds a file of
	// the torrent's; nothing was touched.
	ErrMoveTarget = errors.New("engine: destination already holds the torrent's files")
	// ErrBadMove: the destination of a move is outside the download root
	// or inside the torrent's own folder.
	ErrBadMove = errors.New("engine: cannot move there")
)
