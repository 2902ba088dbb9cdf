package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

const (
	blockSize      = 16 << 10
	requestTimeout = 60 * time.Second
	// A piece that fails with data from a peer more than this often bans it
	// even when others contributed too.
	maxHashFailures = 3
)

// transfer is the download: the picker while the torrent transfers, the
// pieces being assembled, the bytes out for hashing and writing, and the
// verified set kept while it is stopped. Session-owned.
type transfer struct {
	pick      *picker.Picker
	pieces    map[int]*pieceBuf
	verifying int64          // bytes of complete pieces out for hashing and writing
	stopHave  *bitset.BitSet // verified pieces kept across stop/start
	// depthScale shrinks every peer's pipeline alike when together they
	// would ask for more than the pieces in progress may hold
	// (maxActiveBytes); 0 means no scaling. Set at each tick.
	depthScale float64
	// prio is each piece's priority from the file priorities (nil: all
	// normal), skip the skipped files by index in mi.Files (nil: none),
	// wanted the bytes of the wanted pieces (priority.go).
	prio   []uint8
	skip   []bool
	wanted int64
}

func newTransfer() transfer { return transfer{pieces: map[int]*pieceBuf{}} }

// have is the set of verified pieces: the picker's while transferring, the
// one kept across a stop (or from the resume record) otherwise, so a
// stopped torrent still shows what it has.
func (t *transfer) have(mi *metainfo.MetaInfo) *bitset.BitSet {
	switch {
	case t.pick != nil:
		return t.pick.Have()
	case t.stopHave != nil && mi != nil:
		return t.stopHave
	}
	return bitsetFor(mi)
}

func (t *transfer) complete() bool { return t.pick != nil && t.pick.Missing() == 0 }

// left is the bytes of mi's wanted pieces not verified yet.
func (t *transfer) left(mi *metainfo.MetaInfo) int64 {
	if mi == nil {
		return 0
	}
	have := t.have(mi)
	if t.prio != nil {
		var left int64
		for i, p := range t.prio {
			if p != picker.PrioritySkip && !have.Test(uint(i)) {
				left += mi.PieceSize(i)
			}
		}
		return left
	}
	left := mi.TotalLength
	for i, ok := have.NextSet(0); ok && int(i) < mi.NumPieces(); i, ok = have.NextSet(i + 1) {
		left -= mi.PieceSize(int(i))
	}
	return left
}

// stop forgets the pieces in progress (their buffers go to recycle) and
// the picker, keeping what is verified.
func (t *transfer) stop(recycle func([]byte)) {
	for k, pb := range t.pieces {
		recycle(pb.data)
		delete(t.pieces, k)
	}
	if t.pick != nil {
		t.stopHave = t.pick.Have()
		t.pick = nil
	}
}

// backlogFull: enough complete pieces wait for the hash lane and the disk
// that asking peers for more would only grow memory.
func (t *transfer) backlogFull(pieceLength int64) bool {
	return t.verifying >= max(maxVerifyBacklog, 2*pieceLength)
}

// depth is how many requests p should have outstanding: its pipeline's
// depth, scaled down with everyone else's when the pieces in progress are
// the bound. Without the scaling the first peers to ask took every piece
// the bound allows, four each at 2 MiB/s x 2 s, and of 50 seeders capped
// at 2 MiB/s behind 100 ms the others idled: 60 % of the supply.
func (t *transfer) depth(p *peer) int {
	d := p.pipe.Depth()
	if t.depthScale > 0 {
		d = max(picker.MinDepth, int(float64(d)*t.depthScale))
	}
	return d
}

// scaleDepths sets depthScale from the pipelines of the peers we download
// from: the blocks of maxActiveBytes shared in proportion to their depths.
func (s *Session) scaleDepths() {
	s.dl.depthScale = 0
	if s.dl.pick == nil || s.mi == nil {
		return
	}
	total := 0
	for _, p := range s.swarm.peers {
		if !p.closed && !p.peerChoking && p.amInterested {
			total += p.pipe.Depth()
		}
	}
	budget := maxActivePieces(s.mi.PieceLength) * int(max(s.mi.PieceLength/blockSize, 1))
	if total > budget {
		s.dl.depthScale = float64(budget) / float64(total)
	}
}

// fillRequests tops p's pipeline up to its depth.
func (s *Session) fillRequests(p *peer) {
	if p.closed || p.peerChoking || !p.amInterested || s.dl.pick == nil || s.limits.downBlocked(s) || s.verifyBacklogFull() {
		return
	}
	id := picker.PeerID(p.id)
	want := s.dl.depth(p) - s.dl.pick.Outstanding(id)
	if allowed, limited := s.limits.downAllowance(s); limited {
		// Under a limit, never have more in flight than the tokens cover:
		// a deep pipeline would otherwise overshoot by its own depth.
		want = min(want, int(allowed/blockSize)+1)
	}
	if want <= 0 {
		return
	}
	idle := s.dl.pick.Outstanding(id) == 0
	reqs := s.dl.pick.Pick(id, p.has, want, s.now)
	if len(reqs) == 0 {
		return
	}
	if idle {
		// Nothing queued ahead at the peer: the first block back times a
		// round trip (Pipeline.ObserveRTT).
		p.rttProbe = s.now
	}
	buf := make([]byte, 0, 17*len(reqs))
	for _, r := range reqs {
		buf = wire.AppendRequest(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
		// Tokens are taken when asking, so what is in flight is paid for.
		s.limits.down.take(int64(r.Length))
		s.limits.gdown.take(&s.c.down, int64(r.Length))
	}
	s.send(p, buf)
}

func onPiece(s *Session, p *peer, m *wire.Message) error {
	defer releaseBlock(m.Block)
	n := int64(len(m.Block))
	p.down.Add(s.now, n)
	s.stats.down.Add(s.now, n)
	if s.dl.pick == nil || s.life.state != StateDownloading {
		s.unasked(p, n)
		return nil
	}
	piece, begin := int(m.Index), int(m.Begin)
	cancels, complete, dup, err := s.dl.pick.BlockReceived(picker.PeerID(p.id), piece, begin, int(n))
	if err != nil {
		// Not asked of this peer (or malformed): it may have crossed our
		// cancel or choke, which the allowance covers; past that it is
		// an offence.
		s.unasked(p, n)
		return nil
	}
	s.cancel(cancels)
	if dup {
		s.stats.wasted += n
		return nil
	}
	p.downloaded += n
	s.stats.downloaded += n
	p.lastBlock = s.now
	p.snubbed = false
	if !p.rttProbe.IsZero() {
		p.pipe.ObserveRTT(s.now.Sub(p.rttProbe))
		p.rttProbe = time.Time{}
	}
	p.pipe.BlockReceived()
	s.keepBlock(piece, begin, m.Block, complete)
	return nil
}

// keepBlock copies a block the picker accepted into its piece's buffer and
// hands the piece to verify once complete: peers' and web seeds' blocks
// alike.
func (s *Session) keepBlock(piece, begin int, data []byte, complete bool) {
	pb := s.dl.pieces[piece]
	if pb == nil {
		pb = &pieceBuf{data: s.pieceBuffer(piece)}
		s.dl.pieces[piece] = pb
	}
	copy(pb.data[begin:], data)
	if complete {
		s.verify(piece, pb)
	}
}

// pieceBuffer returns a buffer of exactly piece's size from the client's
// pool; its old contents are overwritten block by block before hashing.
func (s *Session) pieceBuffer(piece int) []byte {
	return s.c.bufs.get(int(s.mi.PieceSize(piece)), int(s.mi.PieceLength), s.now)
}

func (s *Session) recycle(b []byte) { s.c.bufs.put(b) }

const (
	// maxActiveBytes bounds the pieces being downloaded at once, so their
	// buffers, not the torrent, set the memory. Peers then share started
	// pieces rather than each opening its own: with 50 seeders and
	// 250-deep pipelines a 1 GiB download had held 380 MiB of partial
	// pieces.
	maxActiveBytes = 64 << 20
	// maxVerifyBacklog bounds the bytes of complete pieces a session has
	// queued for hashing and writing. Past it the session stops asking
	// peers for more until the disk catches up, instead of holding the
	// whole torrent in memory (libtorrent's max_queued_disk_bytes).
	maxVerifyBacklog = 64 << 20
)

func maxActivePieces(pieceLength int64) int {
	return max(16, int(maxActiveBytes/max(pieceLength, 1)))
}

func (s *Session) verifyBacklogFull() bool { return s.dl.backlogFull(s.mi.PieceLength) }

// verify hands a complete piece to the hash pool; a good piece is written,
// a bad one never touches the disk.
func (s *Session) verify(piece int, pb *pieceBuf) {
	delete(s.dl.pieces, piece)
	data, st := pb.data, s.store
	s.dl.verifying += int64(len(data))
	s.submit(s.c.hash, func() event {
		ok, err := st.HashAndWritePiece(piece, data)
		return evFunc(func(s *Session) { s.pieceChecked(piece, data, ok, err) })
	})
}

func (s *Session) pieceChecked(piece int, data []byte, ok bool, err error) {
	s.dl.verifying -= int64(len(data))
	s.recycle(data)
	if s.dl.pick == nil {
		return
	}
	switch {
	case errors.Is(err, storage.ErrSkipped):
		// It stopped being wanted while it was hashed: nothing to keep.
		s.failPiece(piece)
	case err != nil:
		s.failPiece(piece)
		s.setError(fmt.Errorf("engine: writing piece %d: %w%s", piece, err, recheckHint(err)))
	case !ok:
		s.pieceFailed(piece)
	default:
		s.pieceVerified(piece)
	}
}

// diskTrouble handles a failed read of verified data. Data that is gone or
// short (a file deleted, truncated or replaced behind our back) is not
// served, and peers must not wait for it: the torrent goes to state error
// naming the file, until the user rechecks it.
func (s *Session) diskTrouble(err error) {
	if s.life.state != StateSeeding && s.life.state != StateDownloading {
		return
	}
	if dataGone(err) {
		s.setError(fmt.Errorf("engine: %w%s", err, recheckHint(err)))
	}
}

// dataGone: the error says data we had verified is no longer on disk.
func dataGone(err error) bool {
	return errors.Is(err, storage.ErrNotPresent) || errors.Is(err, storage.ErrFileChanged)
}

// recheckHint tells the user the way out of a data error.
func recheckHint(err error) string {
	if dataGone(err) {
		return "; the data on disk changed: recheck the torrent (/recheck) to continue from what is there"
	}
	return ""
}

func (s *Session) pieceFailed(piece int) {
	size := s.mi.PieceSize(piece)
	s.stats.wasted += size
	s.c.hashFailures.Add(1)
	contributors := s.failPiece(piece)
	s.webPieceFailed(piece, contributors)
	for _, id := range contributors {
		p := s.swarm.peers[picker.PeerID(id)]
		if p == nil {
			continue
		}
		p.failures++
		switch {
		case len(contributors) == 1:
			s.ban(p, fmt.Sprintf("sent all of piece %d, which failed its hash", piece))
		case p.failures >= maxHashFailures:
			s.ban(p, fmt.Sprintf("contributed to %d pieces that failed their hash", p.failures))
		}
	}
	s.dirty = true
}

func (s *Session) pieceVerified(piece int) {
	if err := s.dl.pick.PieceVerified(piece); err != nil {
		return
	}
	s.persist.dirty = true
	have := wire.AppendHave(nil, uint32(piece))
	for _, p := range s.swarm.peers {
		s.send(p, have)
	}
	s.dirty = true
	if s.complete() {
		s.completed()
	}
}

func (s *Session) notifyComplete() {
	for _, f := range s.onComplete {
		f()
	}
	s.onComplete = nil
}

// WhenComplete calls f once every wanted piece is verified, at once if that is
// already so; Snapshot then says seeding. f runs on the session's thread,
// so it must only hand the news over (close a channel). Safe for
// concurrent use.
func (s *Session) WhenComplete(f func()) {
	s.post(evFunc(func(s *Session) {
		if s.life.state == StateSeeding {
			f()
			return
		}
		s.onComplete = append(s.onComplete, f)
	}))
}

// requestTimeouts gives back blocks a peer sat on too long, and marks it
// snubbed so the choker stops counting on it.
func (s *Session) requestTimeouts() {
	if s.dl.pick == nil {
		return
	}
	timedOut := s.dl.pick.Timeouts(s.now, requestTimeout)
	for _, c := range timedOut {
		if p := s.swarm.peers[picker.PeerID(c.Peer)]; p != nil {
			p.snubbed = true
		}
	}
	s.cancel(timedOut)
}

// unrequestedSlack is what any peer may send unasked before it counts as an
// offence, beyond what our cancels and chokes allow: a few blocks of
// requests a stop or restart dropped.
const unrequestedSlack = 4 * blockSize

// maxUnrequested caps the allowance at the deepest pipeline we keep with a
// peer (picker.CapDepth blocks): more can never be in flight.
const maxUnrequested = picker.CapDepth * blockSize

// cancel sends CANCEL for requests the picker has already forgotten. The
// blocks may still be on their way, so each adds to the peer's allowance
// for unasked data.
func (s *Session) cancel(cs []picker.Cancel) {
	for _, c := range cs {
		if o := s.swarm.peers[picker.PeerID(c.Peer)]; o != nil {
			o.unrequested = min(o.unrequested+int64(c.Length), maxUnrequested)
			s.send(o, wire.AppendCancel(nil, uint32(c.Piece), uint32(c.Begin), uint32(c.Length)))
		}
	}
}

// unasked counts a block p sent that nobody asked it for: wasted, taken
// from its allowance, and an offence once that is spent.
func (s *Session) unasked(p *peer, n int64) {
	s.stats.wasted += n
	if p.unrequested >= n {
		p.unrequested -= n
		return
	}
	p.unrequested = 0
	s.offence(p, "sent a block nobody asked for")
}

// failPiece puts a started or verified piece back among the missing ones,
// cancelling what other peers still owe of it first, and returns its
// contributors.
func (s *Session) failPiece(piece int) []picker.PeerID {
	s.cancel(s.dl.pick.PieceRequests(piece))
	who, _ := s.dl.pick.PieceFailed(piece)
	return who
}
