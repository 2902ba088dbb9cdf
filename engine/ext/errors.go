// Package ext implements the BEP 10 extension protocols a magnet download
// and a swarm need: BEP 9 ut_metadata (fetching and serving the info dict)
// and BEP 11 ut_pex (peer exchange). Everything here is plain data: codecs
// take and return bytes, and the stateful helpers take an explicit clock and
// return what to send, so the owning session drives them from its own
// goroutine and tests drive them without sockets.
package ext

import "errors"

// Sentinel errors. Every error this package returns is, or wraps, one of
// them, so the session chooses a reaction with errors.Is.
var (
	// ErrBadMetadataMsg: a ut_metadata payload that is not a bencoded dict
	// followed by data within bounds, or one missing a required key.
	ErrBadMetadataMsg = errors.New("ext: bad ut_metadata message")
	// ErrUnknownMetadataType: a well-formed ut_metadata message whose
	// msg_type we do not know. BEP 9 says to ignore it.
	ErrUnknownMetadataType = errors.New("ext: unknown ut_metadata msg_type")
	// ErrMetadataSize: a metadata_size that is not positive or exceeds
	// MaxMetadataSize.
	ErrMetadataSize = errors.New("ext: metadata size out of range")
	// ErrBadPeer: the peer sent metadata we asked for that contradicts what
	// it announced (wrong total_size, wrong length, piece out of range). The
	// fetcher has dropped what the peer contributed and will not ask it
	// again; the session may disconnect it.
	ErrBadPeer = errors.New("ext: peer sent inconsistent metadata")
	// ErrHashMismatch: the assembled metadata does not hash to the
	// infohash. The fetcher has discarded it and excluded contributors.
	ErrHashMismatch = errors.New("ext: metadata does not match infohash")
	// ErrNotAssembled: a hash result was reported while no assembled
	// metadata was waiting for one.
	ErrNotAssembled = errors.New("ext: no metadata awaiting verification")
	// ErrBadPex: a ut_pex payload that is not a bencoded dict within limits.
	ErrBadPex = errors.New("ext: bad ut_pex message")
)
