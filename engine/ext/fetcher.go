package ext

import (
	"crypto/sha1"
	"fmt"
	"slices"
	"time"

	"gotorrentserver/metainfo"
)

// PeerID is the session's slot number for a connection, as in the picker.
type PeerID int

// Request asks the session to send a ut_metadata request for Piece to Peer.
type Request struct {
	Peer  PeerID
	Piece int
}

// FetcherConfig tunes a MetadataFetcher; zero fields take the defaults.
type FetcherConfig struct {
	// RequestTimeout is how long a request may stay unanswered before the
	// piece is asked of someone else (default 20s). A peer that timed out
	// or rejected is also left alone this long.
	RequestTimeout time.Duration
	// MaxRequestsPerPeer bounds a peer's outstanding requests (default 2):
	// enough to hide a round trip, few enough to spread pieces over peers.
	MaxRequestsPerPeer int
	// MaxStrikes is how many timeouts or rejects in a row make the fetcher
	// stop asking a peer (default 3). Its earlier data is kept.
	MaxStrikes int
}

func (c *FetcherConfig) defaults() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 20 * time.Second
	}
	if c.MaxRequestsPerPeer <= 0 {
		c.MaxRequestsPerPeer = 2
	}
	if c.MaxStrikes <= 0 {
		c.MaxStrikes = 3
	}
}

// peerState orders how much the fetcher trusts a peer.
type peerState uint8

const (
	peerClean   peerState = iota // never part of a failed download
	peerSuspect                  // contributed to metadata that failed its hash
	peerSlow                     // timed out or rejected too often; data kept
	peerBanned                   // sent data contradicting itself, or failed alone
)

type fetchPeer struct {
	size      int64
	state     peerState
	inflight  int
	strikes   int
	notBefore time.Time
}

type pieceReq struct {
	active bool
	peer   PeerID
	at     time.Time
}

// MetadataFetcher downloads the info dict of a magnet over BEP 9 from
// several peers in parallel and verifies it against the infohash. It does
// no I/O: the session reports handshakes, messages and disconnects, and
// sends the Requests that Next returns. Not safe for concurrent use: call it
// only from the owning session's goroutine.
//
// Trust works in two tiers. Pieces are fetched in parallel from clean
// peers. When the assembled dict fails its hash, a lone contributor is
// banned; several contributors cannot be told apart, so they all become
// suspects. Suspects are only used once no clean peer is left, and then one
// at a time for the whole dict, so the next failure names its culprit and
// an honest suspect still completes the download. Every failure turns at
// least one clean peer into a suspect or bans one, so retries end.
type MetadataFetcher struct {
	ih    metainfo.Hash
	cfg   FetcherConfig
	peers map[PeerID]*fetchPeer

	size   int64 // the size being fetched; 0 until chosen
	pieces [][]byte
	from   []PeerID
	reqs   []pieceReq
	have   int

	solo      PeerID // the one suspect being fetched from, when soloOn
	soloOn    bool
	assembled []byte // all pieces in, awaiting a hash result
	info      []byte // verified
}

// NewMetadataFetcher starts fetching the info dict whose SHA-1 is ih.
func NewMetadataFetcher(ih metainfo.Hash, cfg FetcherConfig) *MetadataFetcher {
	cfg.defaults()
	return &MetadataFetcher{ih: ih, cfg: cfg, peers: make(map[PeerID]*fetchPeer)}
}

// AddPeer registers a peer that supports ut_metadata with the
// metadata_size from its extension handshake. A size outside
// 1..MaxMetadataSize is ErrMetadataSize and the peer is not used. A
// repeated handshake with a different size discards what the peer gave
// under the old size. Session goroutine only.
func (f *MetadataFetcher) AddPeer(p PeerID, metadataSize int64) error {
	if metadataSize <= 0 || metadataSize > MaxMetadataSize {
		f.RemovePeer(p)
		return fmt.Errorf("%w: %d", ErrMetadataSize, metadataSize)
	}
	if fp := f.peers[p]; fp != nil {
		if fp.size != metadataSize {
			f.forget(p, true)
			fp.size = metadataSize
		}
		return nil
	}
	f.peers[p] = &fetchPeer{size: metadataSize}
	return nil
}

// RemovePeer forgets a disconnected peer; its outstanding pieces go back to
// the pool. Data it already delivered is kept. Session goroutine only.
func (f *MetadataFetcher) RemovePeer(p PeerID) {
	if f.peers[p] == nil {
		return
	}
	f.forget(p, false)
	delete(f.peers, p)
}

// Excluded reports whether the fetcher has stopped asking p: banned for
// bad data or given up on for timeouts and rejects. Session goroutine only.
func (f *MetadataFetcher) Excluded(p PeerID) bool {
	fp := f.peers[p]
	return fp != nil && fp.state >= peerSlow
}

// Progress reports pieces received and pieces in total (0 until a size is
// chosen). Session goroutine only.
func (f *MetadataFetcher) Progress() (have, total int) { return f.have, len(f.pieces) }

// Done reports whether the verified info dict is available from Info.
// Session goroutine only.
func (f *MetadataFetcher) Done() bool { return f.info != nil }

// Info returns the verified info dict bytes, which
// metainfo.ParseInfoBytes accepts, or nil before Done. Session goroutine
// only; the bytes are not modified afterwards.
func (f *MetadataFetcher) Info() []byte { return f.info }

// Next expires overdue requests as of now and returns the requests to send.
// Each returned request counts as sent at now. It returns nothing while
// assembled metadata awaits its hash result or once Done. Session goroutine
// only.
func (f *MetadataFetcher) Next(now time.Time) []Request {
	if f.info != nil || f.assembled != nil {
		return nil
	}
	f.expire(now)
	ready := f.eligible()
	// Drop peers that are saturated or cooling down; hand out missing
	// pieces round-robin among the rest so each peer carries a share.
	ready = slices.DeleteFunc(ready, func(p PeerID) bool {
		fp := f.peers[p]
		return fp.inflight >= f.cfg.MaxRequestsPerPeer || now.Before(fp.notBefore)
	})
	var out []Request
	next := 0
	for i := 0; i < len(f.pieces) && len(ready) > 0; i++ {
		if f.pieces[i] != nil || f.reqs[i].active {
			continue
		}
		next %= len(ready)
		p := ready[next]
		fp := f.peers[p]
		f.reqs[i] = pieceReq{active: true, peer: p, at: now}
		fp.inflight++
		out = append(out, Request{Peer: p, Piece: i})
		if fp.inflight >= f.cfg.MaxRequestsPerPeer {
			ready = slices.Delete(ready, next, next+1)
		} else {
			next++
		}
	}
	return out
}

// OnMessage handles a ut_metadata data or reject message from p; requests
// are the MetadataServer's job and are ignored here. Data we did not ask p
// for (late after a timeout, or for another size) is ignored. Data that
// contradicts p's announced size, has the wrong length, or names a piece
// outside it bans p, discards everything p delivered and returns
// ErrBadPeer. Once the last piece is in, Assembled returns the dict for
// hashing. Session goroutine only.
func (f *MetadataFetcher) OnMessage(p PeerID, m MetadataMsg, now time.Time) error {
	fp := f.peers[p]
	if fp == nil || fp.state == peerBanned || f.info != nil || f.assembled != nil {
		return nil
	}
	switch m.Type {
	case MetadataReject:
		if f.requested(p, m.Piece) {
			f.reqs[m.Piece].active = false
			fp.inflight--
			f.strike(fp, now)
		}
		return nil
	case MetadataData:
	default:
		return nil
	}
	switch {
	case m.Piece < 0 || m.Piece >= NumMetadataPieces(fp.size):
		f.ban(p)
		return fmt.Errorf("%w: piece %d outside its metadata_size %d", ErrBadPeer, m.Piece, fp.size)
	case m.TotalSize != fp.size:
		f.ban(p)
		return fmt.Errorf("%w: total_size %d, handshake said %d", ErrBadPeer, m.TotalSize, fp.size)
	case !f.requested(p, m.Piece):
		return nil
	case len(m.Data) != metadataPieceLen(f.size, m.Piece):
		f.ban(p)
		return fmt.Errorf("%w: piece %d of %d bytes, want %d", ErrBadPeer, m.Piece, len(m.Data), metadataPieceLen(f.size, m.Piece))
	}
	f.reqs[m.Piece].active = false
	fp.inflight--
	fp.strikes = 0
	f.pieces[m.Piece] = append([]byte(nil), m.Data...)
	f.from[m.Piece] = p
	f.have++
	if f.have == len(f.pieces) {
		f.assembled = make([]byte, 0, f.size)
		for _, b := range f.pieces {
			f.assembled = append(f.assembled, b...)
		}
	}
	return nil
}

// Assembled returns the complete, not yet verified info dict once every
// piece is in, else nil. The session hashes it off its own goroutine (SHA-1
// of up to MaxMetadataSize belongs on the hash pool) and reports the sum
// with HashResult, or calls Verify to hash inline. Session goroutine only;
// the bytes must not be modified.
func (f *MetadataFetcher) Assembled() []byte { return f.assembled }

// HashResult reports the SHA-1 of Assembled. On a match the fetcher is
// Done. On a mismatch it discards all pieces, bans a lone contributor or
// makes several contributors suspects, and returns ErrHashMismatch; Next
// then asks other peers. ErrNotAssembled if nothing awaited a hash.
// Session goroutine only.
func (f *MetadataFetcher) HashResult(sum metainfo.Hash) error {
	if f.assembled == nil {
		return ErrNotAssembled
	}
	if sum == f.ih {
		f.info = f.assembled
		f.assembled = nil
		f.pieces, f.from, f.reqs = nil, nil, nil
		return nil
	}
	var contributors []PeerID
	for _, p := range f.from {
		if !slices.Contains(contributors, p) {
			contributors = append(contributors, p)
		}
	}
	f.assembled = nil
	f.reset(f.size)
	for _, p := range contributors {
		fp := f.peers[p]
		switch {
		case fp == nil:
		case len(contributors) == 1:
			fp.state = peerBanned
		case fp.state == peerClean:
			fp.state = peerSuspect
		}
	}
	return fmt.Errorf("%w: from %d peer(s)", ErrHashMismatch, len(contributors))
}

// Verify hashes Assembled inline and applies HashResult. For callers that
// do not mind a SHA-1 of up to MaxMetadataSize on their goroutine (tests,
// tools). Session goroutine only.
func (f *MetadataFetcher) Verify() error {
	if f.assembled == nil {
		return ErrNotAssembled
	}
	return f.HashResult(sha1.Sum(f.assembled))
}
