package engine

import (
	"bytes"
	"sync"

	"gotorrentserver/metainfo"
)

// Change is a set of the kinds of things a snapshot can differ in. The API
// can ask what changed since a version and send only that, instead of
// re-reading every torrent (libtorrent's post_torrent_updates).
type Change uint16

// Kinds of change.
const (
	ChangeState    Change = 1 << iota // state or error
	ChangeProgress                    // verified pieces, files, metadata pieces
	ChangePeers                       // connected or known peers, and their figures
	ChangeRates                       // torrent rates and totals
	ChangeTrackers                    // tracker statuses
	ChangeSettings                    // folder, limits, sequential
	ChangeWebSeeds                    // web seed statuses and figures
	numChangeKinds = iota
)

// ChangeAll is every kind.
const ChangeAll Change = 1<<numChangeKinds - 1

// changeVersions holds, per kind of change, the client-wide version at
// which that part of a torrent last changed.
type changeVersions [numChangeKinds]uint64

// ChangedSince is what differs in this snapshot from the torrent as it was
// at version v (a version from Client.Version or an earlier snapshot).
func (sn *Snapshot) ChangedSince(v uint64) Change {
	var c Change
	for k, at := range sn.changedAt {
		if at > v {
			c |= 1 << k
		}
	}
	return c
}

// diffSnapshots says which kinds of things differ between two snapshots
// of one torrent; everything when there is no old one.
func diffSnapshots(old, sn *Snapshot) Change {
	if old == nil {
		return ChangeAll
	}
	var c Change
	if old.State != sn.State || old.Error != sn.Error || old.LimitReached != sn.LimitReached {
		c |= ChangeState
	}
	if old.Have != sn.Have || old.Left != sn.Left || old.NumPieces != sn.NumPieces || old.Rechecks != sn.Rechecks ||
		old.MetadataHave != sn.MetadataHave || old.MetadataPieces != sn.MetadataPieces ||
		!bytes.Equal(old.Bitfield, sn.Bitfield) || len(old.Files) != len(sn.Files) {
		c |= ChangeProgress
	}
	if old.DownRate != sn.DownRate || old.UpRate != sn.UpRate || old.Downloaded != sn.Downloaded ||
		old.Uploaded != sn.Uploaded || old.Wasted != sn.Wasted {
		c |= ChangeRates
	}
	if old.Settings != sn.Settings || old.Name != sn.Name {
		c |= ChangeSettings
	}
	if !peersEqual(old.Peers, sn.Peers) {
		c |= ChangePeers
	}
	if !trackersEqual(old.Trackers, sn.Trackers) {
		c |= ChangeTrackers
	}
	if !webSeedsEqual(old.WebSeeds, sn.WebSeeds) {
		c |= ChangeWebSeeds
	}
	return c
}

func peersEqual(a, b []PeerSnapshot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Addr != y.Addr || x.PeerID != y.PeerID || x.Client != y.Client || x.Connected != y.Connected ||
			x.DownRate != y.DownRate || x.UpRate != y.UpRate || x.Downloaded != y.Downloaded ||
			x.Uploaded != y.Uploaded || x.Relevance != y.Relevance || x.NumPieces != y.NumPieces ||
			x.Have != y.Have || x.Encrypted != y.Encrypted || x.UTP != y.UTP || x.Outbound != y.Outbound ||
			!bytes.Equal(x.Bitfield, y.Bitfield) {
			return false
		}
	}
	return true
}

func trackersEqual(a, b []TrackerSnapshot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// maxRemovals is how many removals the client remembers for Changes; a
// reader further behind is told to read everything again.
const maxRemovals = 1024

// removals remembers recently removed torrents with the version at which
// each went. Safe for concurrent use.
type removals struct {
	mu      sync.Mutex
	entries []removal
	floor   uint64 // removals at or before this version were forgotten
}

type removal struct {
	version uint64
	ih      metainfo.Hash
}

func (r *removals) add(v uint64, ih metainfo.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) == maxRemovals {
		r.floor = r.entries[0].version
		r.entries = append(r.entries[:0], r.entries[1:]...)
	}
	r.entries = append(r.entries, removal{v, ih})
}

// since lists the torrents removed after v; ok is false when some of them
// may have been forgotten.
func (r *removals) since(v uint64) (ihs []metainfo.Hash, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.version > v {
			ihs = append(ihs, e.ih)
		}
	}
	return ihs, v >= r.floor
}

// Changes is what changed in the client since a version.
type Changes struct {
	Version uint64      // pass this to the next call
	Changed []*Snapshot // torrents added or changed; each says what with ChangedSince
	Removed []metainfo.Hash
	// Reset: the caller is too far behind for the removals to be known;
	// it must read every torrent again (Sessions).
	Reset bool
}

// Version is the client's current change version. Safe for concurrent use.
func (c *Client) Version() uint64 { return c.version.Load() }

// ChangesSince lists what changed after version v (0: everything). It
// reads only published snapshots, never a session. Safe for concurrent
// use.
func (c *Client) ChangesSince(v uint64) Changes {
	out := Changes{Version: c.version.Load()}
	var ok bool
	out.Removed, ok = c.removed.since(v)
	out.Reset = !ok
	c.sessions.Range(func(_, x any) bool {
		if sn := x.(*Session).Snapshot(); sn != nil && sn.Version > v {
			out.Changed = append(out.Changed, sn)
		}
		return true
	})
	return out
}
