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
)
