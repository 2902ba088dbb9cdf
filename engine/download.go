package engine

import (
	"fmt"
	"time"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/engine/wire"
)

const (
	blockSize      = 16 << 10
	requestTimeout = 60 * time.Second
	// A piece that fails with data from a peer more than this often bans it
	// even when others contributed too.
	maxHashFailures = 3
)

// fillRequests tops p's pipeline up to its depth.
func (s *Session) fillRequests(p *peer) {
	if p.closed || p.peerChoking || !p.amInterested || s.pick == nil || s.limits.downBlocked(s) || s.verifyBacklogFull() {
		return
	}
	id := picker.PeerID(p.id)
	want := p.pipe.Depth() - s.pick.Outstanding(id)
	if allowed, limited := s.limits.downAllowance(s); limited {
		// Under a limit, never have more in flight than the tokens cover:
		// a deep pipeline would otherwise overshoot by its own depth.
		want = min(want, int(allowed/blockSize)+1)
	}
	if want <= 0 {
		return
	}
	reqs := s.pick.Pick(id, p.has, want, s.now)
	if len(reqs) == 0 {
		return
	}
	buf := make([]byte, 0, 17*len(reqs))
	for _, r := range reqs {
		buf = wire.AppendRequest(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
		// Tokens are taken when asking, so what is in flight is paid for.
		s.limits.down.take(int64(r.Length))
		s.c.down.take(int64(r.Length))
	}
	s.send(p, buf)
}

func onPiece(s *Session, p *peer, m *wire.Message) error {
	defer releaseBlock(m.Block)
	n := int64(len(m.Block))
	p.down.Add(s.now, n)
	s.stats.down.Add(s.now, n)
	if s.pick == nil || s.state != StateDownloading {
		s.stats.wasted += n
		return nil
	}
	piece, begin := int(m.Index), int(m.Begin)
	cancels, complete, dup, err := s.pick.BlockReceived(picker.PeerID(p.id), piece, begin, int(n))
	if err != nil {
		// Unrequested or malformed: wasted, and not worth a disconnect
		// (it may have crossed a cancel).
		s.stats.wasted += n
		return nil
	}
	for _, c := range cancels {
		if o := s.peers[picker.PeerID(c.Peer)]; o != nil {
			s.send(o, wire.AppendCancel(nil, uint32(c.Piece), uint32(c.Begin), uint32(c.Length)))
		}
	}
	if dup {
		s.stats.wasted += n
		return nil
	}
	p.downloaded += n
	s.stats.downloaded += n
	p.lastBlock = s.now
	p.snubbed = false
	p.pipe.BlockReceived()
	pb := s.pieces[piece]
	if pb == nil {
		pb = &pieceBuf{data: s.pieceBuffer(piece)}
		s.pieces[piece] = pb
	}
	copy(pb.data[begin:], m.Block)
	if complete {
		s.verify(piece, pb)
	}
	return nil
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

// verifyBacklogFull: enough complete pieces wait for the hash pool and the
// disk that asking peers for more would only grow memory.
func (s *Session) verifyBacklogFull() bool {
	return s.verifying >= max(maxVerifyBacklog, 2*s.mi.PieceLength)
}

// verify hands a complete piece to the hash pool; a good piece is written,
// a bad one never touches the disk.
func (s *Session) verify(piece int, pb *pieceBuf) {
	delete(s.pieces, piece)
	data := pb.data
	s.verifying += int64(len(data))
	done := func(r storage.Result) {
		s.post(evFunc(func(s *Session) { s.pieceChecked(piece, data, r) }))
	}
	if !s.c.hash.SubmitHashAndWrite(s.store, piece, data, done) {
		// Pool saturated: retry from a goroutine that may wait, never here.
		st := s.store
		go func() {
			if err := s.c.hash.Submit(s.c.ctx, storage.Job{Kind: storage.KindHashAndWrite, Storage: st, Piece: piece, Data: data, Done: done}); err != nil {
				done(storage.Result{Err: err})
			}
		}()
	}
}

func (s *Session) pieceChecked(piece int, data []byte, r storage.Result) {
	s.verifying -= int64(len(data))
	s.recycle(data)
	if s.pick == nil {
		return
	}
	switch {
	case r.Err != nil:
		s.pick.PieceFailed(piece)
		s.setError(fmt.Errorf("engine: writing piece %d: %w", piece, r.Err))
	case !r.OK:
		s.pieceFailed(piece)
	default:
		s.pieceVerified(piece)
	}
}

func (s *Session) pieceFailed(piece int) {
	size := s.mi.PieceSize(piece)
	s.stats.wasted += size
	contributors, _ := s.pick.PieceFailed(piece)
	for _, id := range contributors {
		p := s.peers[picker.PeerID(id)]
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
	if err := s.pick.PieceVerified(piece); err != nil {
		return
	}
	s.resumeDirty = true
	have := wire.AppendHave(nil, uint32(piece))
	for _, p := range s.peers {
		s.send(p, have)
	}
	s.dirty = true
	if !s.complete() {
		return
	}
	s.state = StateSeeding
	s.store.EnsureEmptyFiles()
	s.announce(tracker.Completed)
	for _, p := range s.peers {
		s.setInterest(p, false)
		if p.hasAll {
			s.dropPeer(p, fmt.Errorf("engine: both sides are seeds"))
		}
	}
	s.saveResume(true)
	s.publish()
	s.notifyComplete()
}

func (s *Session) notifyComplete() {
	for _, f := range s.onComplete {
		f()
	}
	s.onComplete = nil
}

// WhenComplete calls f once every piece is verified, at once if that is
// already so; Snapshot then says seeding. f runs on the session's thread,
// so it must only hand the news over (close a channel). Safe for
// concurrent use.
func (s *Session) WhenComplete(f func()) {
	s.post(evFunc(func(s *Session) {
		if s.state == StateSeeding {
			f()
			return
		}
		s.onComplete = append(s.onComplete, f)
	}))
}

// requestTimeouts gives back blocks a peer sat on too long, and marks it
// snubbed so the choker stops counting on it.
func (s *Session) requestTimeouts() {
	if s.pick == nil {
		return
	}
	for _, c := range s.pick.Timeouts(s.now, requestTimeout) {
		if p := s.peers[picker.PeerID(c.Peer)]; p != nil {
			p.snubbed = true
			s.send(p, wire.AppendCancel(nil, uint32(c.Piece), uint32(c.Begin), uint32(c.Length)))
		}
	}
}
