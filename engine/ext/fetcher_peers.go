package ext

import (
	"slices"
	"time"
)

// eligible returns the peers to fetch from, in id order, choosing or
// changing the size being fetched when needed: clean peers of the chosen
// size in parallel, else one suspect alone (see MetadataFetcher).
func (f *MetadataFetcher) eligible() []PeerID {
	if f.soloOn {
		if fp := f.peers[f.solo]; fp != nil && fp.state == peerSuspect && fp.size == f.size {
			return []PeerID{f.solo}
		}
		f.soloOn = false
		f.reset(0)
	}
	clean := f.withState(peerClean)
	if len(clean) > 0 {
		if !slices.ContainsFunc(clean, func(p PeerID) bool { return f.peers[p].size == f.size }) {
			f.reset(f.vote(clean))
		}
		return slices.DeleteFunc(clean, func(p PeerID) bool { return f.peers[p].size != f.size })
	}
	suspects := f.withState(peerSuspect)
	if len(suspects) == 0 {
		return nil
	}
	// Whatever clean peers delivered before they left is mixed with
	// unknown sources; start the solo fetch from nothing.
	f.solo, f.soloOn = suspects[0], true
	f.reset(f.peers[f.solo].size)
	return []PeerID{f.solo}
}

func (f *MetadataFetcher) withState(s peerState) []PeerID {
	var ids []PeerID
	for p, fp := range f.peers {
		if fp.state == s {
			ids = append(ids, p)
		}
	}
	slices.Sort(ids)
	return ids
}

// vote picks the metadata_size most of ids announced, the smaller on a tie,
// so a minority of liars about the size cannot steer the download.
func (f *MetadataFetcher) vote(ids []PeerID) int64 {
	count := make(map[int64]int, 2)
	var best int64
	for _, p := range ids {
		s := f.peers[p].size
		count[s]++
		if c, b := count[s], count[best]; best == 0 || c > b || (c == b && s < best) {
			best = s
		}
	}
	return best
}

// reset discards all pieces and outstanding requests and prepares for an
// info dict of size bytes (none when 0). Replies to the dropped requests
// will arrive unsolicited and be ignored.
func (f *MetadataFetcher) reset(size int64) {
	n := NumMetadataPieces(size)
	f.size, f.have = size, 0
	f.pieces, f.from, f.reqs = make([][]byte, n), make([]PeerID, n), make([]pieceReq, n)
	for _, fp := range f.peers {
		fp.inflight = 0
	}
}

func (f *MetadataFetcher) requested(p PeerID, piece int) bool {
	return piece >= 0 && piece < len(f.reqs) && f.reqs[piece].active && f.reqs[piece].peer == p
}

// expire returns overdue requests to the pool and strikes their peers.
func (f *MetadataFetcher) expire(now time.Time) {
	for i := range f.reqs {
		r := &f.reqs[i]
		if !r.active || now.Sub(r.at) < f.cfg.RequestTimeout {
			continue
		}
		r.active = false
		if fp := f.peers[r.peer]; fp != nil {
			fp.inflight--
			f.strike(fp, now)
		}
	}
}

// strike records a timeout or reject: the peer rests for a timeout, and
// after MaxStrikes in a row it is not asked again.
func (f *MetadataFetcher) strike(fp *fetchPeer, now time.Time) {
	fp.strikes++
	fp.notBefore = now.Add(f.cfg.RequestTimeout)
	if fp.strikes >= f.cfg.MaxStrikes && fp.state < peerSlow {
		fp.state = peerSlow
	}
}

// ban stops using p and discards what it delivered.
func (f *MetadataFetcher) ban(p PeerID) {
	f.forget(p, true)
	f.peers[p].state = peerBanned
}

// forget cancels p's outstanding requests and, with dropData, the pieces it
// delivered.
func (f *MetadataFetcher) forget(p PeerID, dropData bool) {
	for i := range f.reqs {
		if f.reqs[i].active && f.reqs[i].peer == p {
			f.reqs[i].active = false
		}
		if dropData && f.pieces[i] != nil && f.from[i] == p {
			f.pieces[i] = nil
			f.have--
		}
	}
	f.peers[p].inflight = 0
}
