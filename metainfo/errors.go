package metainfo

import "errors"

// Sentinel errors; every error this package returns wraps one of them, so
// callers can tell a malformed document from an unsupported one with errors.Is.
var (
	// ErrBencode: the bytes are not one well-formed bencode value within limits.
	ErrBencode = errors.New("metainfo: bad bencode")
	// ErrInvalid: well-formed bencode that is not a valid torrent.
	ErrInvalid = errors.New("metainfo: invalid torrent")
	// ErrV2Only: a BitTorrent v2-only torrent or magnet, which we do not support.
	ErrV2Only = errors.New("metainfo: v2-only torrents are not supported")
	// ErrMagnet: a magnet URI we cannot use.
	ErrMagnet = errors.New("metainfo: invalid magnet link")
)
