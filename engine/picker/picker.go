// Package picker decides which blocks to request from which peer.
//
// A Picker is plain data owned by one torrent session: it does no I/O, starts
// no goroutines and takes no locks, because the session is a single-threaded
// state machine. Every method must be called from the session's goroutine
// only. Time comes in as a now argument and randomness from an injected
// *rand.Rand, so tests can replay any run exactly.
//
// Pieces we have not started live in buckets keyed by availability, so a
// rarest-first pick walks from the rarest bucket up and stops as soon as it
// has enough blocks: no sort of all pieces per pick. Started pieces carry
// per-block state (free, requested by up to EndgameDup peers, received).
package picker

import (
	"fmt"
	"math/rand"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/metainfo"
)

// BlockSize is the request size every client uses (BEP 3 de facto: 16 KiB).
const BlockSize = 16 * 1024

// MaxPieceSize bounds piece sizes so per-piece block tables stay small.
const MaxPieceSize = 1 << 30

// maxDup is the most peers one block may be requested from at once.
const maxDup = 3

// PeerID is the session's small slot number for a connection, not the
// 20-byte BitTorrent peer id.
type PeerID int

// Request is one block: Length bytes at offset Begin of piece Piece.
type Request struct {
	Piece, Begin, Length int
}

// Cancel names a request that the session should cancel (send CANCEL) on
// the given peer's connection.
type Cancel struct {
	Peer PeerID
	Request
}

// Picker tracks availability, block state and outstanding requests for one
// torrent. Create it with New or FromMeta. Not safe for concurrent use: call
// it only from the owning session's goroutine.
type Picker struct {
	// EndgameDup is how many peers one block may be requested from at once
	// in endgame (1..3, default 3). Set it before the first Pick.
	EndgameDup int

	n          int
	size       func(int) int64
	rng        *rand.Rand
	have       *bitset.BitSet
	missing    int
	sequential bool
	maxActive  int // 0: no bound

	// availability, counted without peers that have everything (seeds);
	// a piece's real availability is avail[i] + seeds.
	avail      []int32
	seeds      int
	pos        []int32   // index in buckets[avail[i]], -1 unless untouched
	buckets    [][]int32 // untouched missing pieces by avail
	untouched  *bitset.BitSet
	nUntouched int
	// hbuckets are buckets of the untouched pieces of PriorityHigh, nHigh
	// how many; Pick empties them before the others.
	hbuckets [][]int32
	nHigh    int

	// prio is each piece's priority and skip the unwanted pieces; both nil
	// until SetPiecePriority is first called (everything normal).
	prio []uint8
	skip *bitset.BitSet

	parts  []*partial // by piece; nil unless started and not yet verified
	active []int32    // pieces with a partial
	open   []int32    // partials with at least one free block
	spare  []*partial

	peers   map[PeerID]*peerState
	scratch []int32
}

// New makes a picker for numPieces pieces whose sizes pieceSize reports;
// have lists the pieces we already hold (nil for none) and is copied.
// pieceSize is called again later and must keep returning the same values.
// Any goroutine may construct; the result then belongs to one session, and
// rng must not be shared with another goroutine.
func New(numPieces int, pieceSize func(int) int64, have *bitset.BitSet, rng *rand.Rand) (*Picker, error) {
	if numPieces < 0 || pieceSize == nil || rng == nil {
		return nil, fmt.Errorf("%w: need numPieces >= 0, a size function and a rand source", ErrBadSize)
	}
	for i := range numPieces {
		if s := pieceSize(i); s <= 0 || s > MaxPieceSize {
			return nil, fmt.Errorf("%w: piece %d has size %d", ErrBadSize, i, s)
		}
	}
	if have != nil {
		if i, ok := have.NextSet(uint(numPieces)); ok {
			return nil, fmt.Errorf("%w: have set contains piece %d", ErrBadPiece, i)
		}
	}
	p := &Picker{
		EndgameDup: maxDup,
		n:          numPieces,
		size:       pieceSize,
		rng:        rng,
		have:       bitset.New(uint(numPieces)),
		buckets:    make([][]int32, 1),
		hbuckets:   make([][]int32, 1),
		peers:      make(map[PeerID]*peerState),
	}
	if have != nil && have.Count() == uint(numPieces) {
		// A complete torrent (seeding) needs no per-piece bookkeeping until
		// a piece is lost (PieceFailed on a verified piece, see grow): a
		// seedbox holding thousands of torrents saves 16 bytes a piece each.
		p.have.SetAll()
		return p, nil
	}
	p.grow()
	// Shuffle the initial order so that pieces of equal rarity come out in
	// random order, not just from a random starting point.
	order := make([]int32, 0, numPieces)
	for i := range numPieces {
		if have != nil && have.Test(uint(i)) {
			p.have.Set(uint(i))
			continue
		}
		order = append(order, int32(i))
	}
	rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
	p.buckets[0] = order
	for k, piece := range order {
		p.pos[piece] = int32(k)
		p.untouched.Set(uint(piece))
	}
	p.nUntouched = len(order)
	p.missing = len(order)
	return p, nil
}

// FromMeta is New with the piece count and sizes of a parsed torrent; the
// same goroutine rules apply.
func FromMeta(m *metainfo.MetaInfo, have *bitset.BitSet, rng *rand.Rand) (*Picker, error) {
	return New(m.NumPieces(), m.PieceSize, have, rng)
}

// NumPieces is the number of pieces in the torrent. Session goroutine only.
func (p *Picker) NumPieces() int { return p.n }

// SetMaxActive bounds how many pieces may be started and not yet verified;
// Pick starts no new piece at the bound (blocks of started pieces are still
// handed out). n <= 0 removes the bound. The session uses it to bound the
// memory its piece buffers hold. Session goroutine only.
func (p *Picker) SetMaxActive(n int) { p.maxActive = n }

// CanStart reports whether a new piece may be started under the
// SetMaxActive bound. PickAllowedFast ignores the bound (a choked peer's
// few allowed pieces must not wait), so a caller using it for more than
// that asks here first. Session goroutine only.
func (p *Picker) CanStart() bool { return !p.activeFull() }

// SetSequential switches between rarest-first (false, the default) and
// lowest-index-first (true) for pieces not yet started. Session goroutine only.
func (p *Picker) SetSequential(on bool) { p.sequential = on }

// Have returns a copy of the set of verified pieces, safe to hand to other
// goroutines as a snapshot. Session goroutine only.
func (p *Picker) Have() *bitset.BitSet { return p.have.Clone() }

// HasPiece reports whether piece i is verified. Session goroutine only.
func (p *Picker) HasPiece(i int) bool { return i >= 0 && i < p.n && p.have.Test(uint(i)) }

// Missing is the number of wanted pieces not yet verified (see
// SetPiecePriority). Session goroutine only.
func (p *Picker) Missing() int { return p.missing }

// Availability is how many known peers have piece i. Session goroutine only.
func (p *Picker) Availability(i int) int {
	if i < 0 || i >= p.n {
		return 0
	}
	if p.avail == nil {
		p.grow()
	}
	return int(p.avail[i]) + p.seeds
}

// grow allocates the per-piece bookkeeping a complete picker does without,
// recounting availability from what the peers announced (their sets are
// kept either way). Pieces are all verified then, so none goes in a bucket.
func (p *Picker) grow() {
	if p.avail != nil {
		return
	}
	p.avail = make([]int32, p.n)
	p.pos = make([]int32, p.n)
	p.parts = make([]*partial, p.n)
	p.untouched = bitset.New(uint(p.n))
	for i := range p.pos {
		p.pos[i] = -1
	}
	for _, ps := range p.peers {
		if !ps.counted || ps.haveAll || ps.has == nil {
			continue
		}
		for i, ok := ps.has.NextSet(0); ok; i, ok = ps.has.NextSet(i + 1) {
			p.avail[i]++
		}
	}
}

// Interesting reports whether peerHas contains a piece we lack; bits past
// the last piece are ignored. It compares whole words, so it costs about
// NumPieces/64 operations and allocates nothing. Session goroutine only.
func (p *Picker) Interesting(peerHas *bitset.BitSet) bool {
	if peerHas == nil || p.missing == 0 {
		return false
	}
	theirs, ours := peerHas.Words(), p.have.Words()
	var skip []uint64
	if p.skip != nil {
		skip = p.skip.Words()
	}
	full := p.n / 64
	for i := 0; i < full && i < len(theirs); i++ {
		if theirs[i]&^ours[i]&^word(skip, i) != 0 {
			return true
		}
	}
	if rem := p.n % 64; rem != 0 && full < len(theirs) {
		mask := uint64(1)<<rem - 1
		return theirs[full]&^ours[full]&^word(skip, full)&mask != 0
	}
	return false
}

// PeerInteresting is Interesting for what we know of a registered peer.
// Session goroutine only.
func (p *Picker) PeerInteresting(peer PeerID) bool {
	ps := p.peers[peer]
	switch {
	case ps == nil:
		return false
	case ps.haveAll:
		return p.missing > 0
	default:
		return p.Interesting(ps.has)
	}
}

// PieceVerified records that piece passed its hash check. Requests still
// outstanding for it are forgotten; blocks that arrive later count as
// duplicates. Session goroutine only.
func (p *Picker) PieceVerified(piece int) error {
	if piece < 0 || piece >= p.n {
		return fmt.Errorf("%w: %d", ErrBadPiece, piece)
	}
	if p.have.Test(uint(piece)) {
		return nil
	}
	if part := p.parts[piece]; part != nil {
		p.forgetRequests(part)
		p.dropPartial(part)
	} else if p.pos[piece] >= 0 {
		p.bucketRemove(piece)
	}
	p.have.Set(uint(piece))
	if p.wanted(piece) {
		p.missing--
	}
	return nil
}

// PieceFailed records a failed hash check (or corrupt data found later on a
// verified piece): every block becomes free again and the piece goes back
// among the unstarted ones. It returns the peers that delivered blocks of
// it, so the session can ban a sole contributor or a repeat offender.
// Session goroutine only.
func (p *Picker) PieceFailed(piece int) ([]PeerID, error) {
	if piece < 0 || piece >= p.n {
		return nil, fmt.Errorf("%w: %d", ErrBadPiece, piece)
	}
	if p.have.Test(uint(piece)) {
		p.grow()
		p.have.Clear(uint(piece))
		if p.wanted(piece) {
			p.missing++
			p.bucketAdd(piece)
		}
		return nil, nil
	}
	part := p.parts[piece]
	if part == nil {
		return nil, nil
	}
	who := append([]PeerID(nil), part.contrib...)
	p.forgetRequests(part)
	p.dropPartial(part)
	if p.wanted(piece) {
		p.bucketAdd(piece)
	}
	return who, nil
}

// Contributors lists the peers that delivered blocks of a piece that is
// started but not yet verified, in first-delivery order. Session goroutine
// only.
func (p *Picker) Contributors(piece int) []PeerID {
	if piece < 0 || piece >= p.n || p.parts == nil || p.parts[piece] == nil {
		return nil
	}
	return append([]PeerID(nil), p.parts[piece].contrib...)
}
