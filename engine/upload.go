package engine

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"gotorrentserver/engine/choke"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/wire"
)

const (
	// maxOutbound is the most unsent bytes any peer may have before no
	// more blocks are read from disk for it (backpressure); each peer's
	// own bound (sendBound) is usually lower.
	maxOutbound = 1 << 20
	// startSendBound is a new peer's bound until its rate is known.
	startSendBound = 256 << 10
	// maxReading bounds disk reads in flight per peer.
	maxReading = 8
)

// uploadQueue is the upload side: the peers with requests waiting for a
// disk read (so serving walks them, not every connection) and the choker
// that decides who is served. Session-owned.
type uploadQueue struct {
	waiting map[picker.PeerID]*peer
	choker  *choke.Choker
	served  uint64  // counts reads handed out; peer.servedAt takes it
	scratch []*peer // order's result, reused
}

// order is the waiting peers in the order to serve them. Without a limit
// every one is served as far as it can go, and map order will do. Under
// one, whoever comes first takes what the limit lets through, and map
// order is not fair: a map of five peers in a group of eight slots starts
// at the first one for four of eight random offsets (Jain's index 0.63
// over a torrent's leechers under a global limit). Least recently served
// first is.
func (u *uploadQueue) order(limited bool) []*peer {
	u.scratch = u.scratch[:0]
	for _, p := range u.waiting {
		u.scratch = append(u.scratch, p)
	}
	if limited {
		slices.SortFunc(u.scratch, func(a, b *peer) int { return cmp.Compare(a.servedAt, b.servedAt) })
	}
	return u.scratch
}

func newUploadQueue() uploadQueue { return uploadQueue{waiting: map[picker.PeerID]*peer{}} }

// queue adds a request of p's, which must be under maxPeerRequests.
func (u *uploadQueue) queue(p *peer, r picker.Request) {
	p.uploads = append(p.uploads, r)
	u.waiting[p.id] = p
}

// resume puts p back among the peers to serve after it left them (its
// send buffer drained, a read finished), if it still has requests.
func (u *uploadQueue) resume(p *peer) {
	if len(p.uploads) > 0 && !p.closed {
		u.waiting[p.id] = p
	}
}

// freeSlot: a newly interested peer may be unchoked now, with unchoked
// peers already served.
func (u *uploadQueue) freeSlot(unchoked int) bool {
	return u.choker.Slots == 0 || unchoked < u.choker.Slots
}

// withdraw removes a request the peer cancelled, if it still waits.
func withdraw(rs []picker.Request, r picker.Request) []picker.Request {
	for i, q := range rs {
		if q == r {
			return append(rs[:i], rs[i+1:]...)
		}
	}
	return rs
}

func onRequest(s *Session, p *peer, m *wire.Message) error {
	if s.mi == nil {
		if p.fast {
			s.send(p, wire.AppendReject(nil, m.Index, m.Begin, m.Length))
			return nil
		}
		return errors.New("engine: request before we have metadata")
	}
	if err := wire.ValidateRequest(m.Index, m.Begin, m.Length, s.mi.PieceSize, s.mi.NumPieces()); err != nil {
		return err
	}
	r := picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)}
	switch {
	case s.dl.pick == nil || !s.dl.pick.HasPiece(r.Piece):
		if p.fast {
			s.send(p, wire.AppendReject(nil, m.Index, m.Begin, m.Length))
			return nil
		}
		return fmt.Errorf("engine: request for piece %d we do not have", r.Piece)
	case p.amChoking:
		if p.fast {
			s.send(p, wire.AppendReject(nil, m.Index, m.Begin, m.Length))
		}
		return nil // without Fast, a request while choked is just dropped
	case len(p.uploads) >= maxPeerRequests:
		return fmt.Errorf("engine: peer queued more than %d requests", maxPeerRequests)
	}
	s.upload.queue(p, r)
	return nil
}

func onCancel(s *Session, p *peer, m *wire.Message) error {
	p.uploads = withdraw(p.uploads, picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)})
	return nil
}

// serveUploads hands queued requests to the disk pool while p's outbound
// buffer and read count are under their bounds. The worker sends the block
// itself, straight from the read buffer, and reports back.
func (s *Session) serveUploads(p *peer) {
	for len(p.uploads) > 0 && !p.closed && !p.blocking && p.reading < maxReading && !s.limits.upBlocked(s) {
		bound := int(p.sendBound)
		if bound == 0 {
			bound = startSendBound
		}
		if p.conn.Buffered() > bound {
			if !p.blocking {
				p.blocking = true
				p.conn.NotifyWritable(bound / 2)
			}
			return // resumed by Peer.Writable
		}
		r := p.uploads[0]
		buf := blockBuffer(r.Length)
		conn, st, piece, begin := p.conn, s.store, r.Piece, r.Begin
		read := func() event {
			block, release, err := st.ReadBlockShared(piece, int64(begin), buf)
			if err == nil {
				// Usually a view into the read cache, sent without a copy;
				// else the bytes were read into buf.
				if release == nil {
					release = func() { releaseBlock(buf) }
				} else {
					releaseBlock(buf)
				}
				hdr := wire.AppendPieceHeader(make([]byte, 0, 13), uint32(piece), uint32(begin), uint32(len(block)))
				conn.SendBlock(hdr, block, release)
			} else {
				releaseBlock(buf)
			}
			return readDone{p: p, n: int64(len(buf)), ok: err == nil, err: err}
		}
		if !s.trySubmit(s.c.disk, read) {
			releaseBlock(buf)
			return // disk lane full: retried after the next event
		}
		p.uploads = p.uploads[1:]
		p.reading++
		s.upload.served++
		p.servedAt = s.upload.served
		s.limits.up.take(int64(r.Length))
		s.limits.gup.take(&s.c.up, int64(r.Length))
	}
}

type readDone struct {
	p   *peer
	n   int64
	ok  bool
	err error
}

func (e readDone) handle(s *Session) {
	e.p.reading--
	s.upload.resume(e.p)
	if !e.ok {
		if e.err != nil && s.store != nil {
			s.logAt(slog.LevelError, "disk read failed", "peer", e.p.addr.String(), "error", e.err.Error())
			s.diskTrouble(e.err)
		}
		return
	}
	e.p.uploaded += e.n
	e.p.up.Add(s.now, e.n)
	s.stats.uploaded += e.n
	s.stats.up.Add(s.now, e.n)
	s.persist.dirty = true // totals are part of the record
	e.p.lastSend = s.now
}

// rechoke applies the choker's decision to every peer.
func (s *Session) rechoke() {
	infos := make([]choke.PeerInfo, 0, len(s.swarm.peers))
	for _, p := range s.swarm.peers {
		infos = append(infos, choke.PeerInfo{
			ID: choke.PeerID(p.id), Interested: p.peerInterest,
			DownRate: p.down.Rate(s.now), UpRate: p.up.Rate(s.now),
			Snubbed: p.snubbed, ConnectedAt: p.connectedAt, UnchokedAt: p.unchokedAt,
		})
	}
	unchoke, _ := s.upload.choker.Rechoke(s.now, infos, s.life.state == StateSeeding)
	for _, p := range s.swarm.peers {
		s.setChoking(p, !unchoke[choke.PeerID(p.id)])
	}
}

func (s *Session) setChoking(p *peer, choking bool) {
	if p.amChoking == choking {
		return
	}
	p.amChoking = choking
	if choking {
		s.send(p, wire.AppendSimple(nil, wire.Choke))
		if p.fast {
			// BEP 6: every pending request gets an explicit reject.
			var buf []byte
			for _, r := range p.uploads {
				buf = wire.AppendReject(buf, uint32(r.Piece), uint32(r.Begin), uint32(r.Length))
			}
			if len(buf) > 0 {
				s.send(p, buf)
			}
		}
		p.uploads = p.uploads[:0]
		return
	}
	p.unchokedAt = s.now
	s.send(p, wire.AppendSimple(nil, wire.Unchoke))
}

// Block buffers travel from the network layer (piece data) and to it (blocks
// read for upload); pooling them keeps a transfer from allocating per block.
// The pool holds array pointers, which a slice converts back to without
// allocating: a *[]byte would cost a header allocation on every Put.
var blockPool = sync.Pool{New: func() any { return new([blockSize]byte) }}

// BlockBuffer returns a buffer of n bytes for a received block. The session
// recycles it after use. Safe for concurrent use.
func BlockBuffer(n int) []byte { return blockBuffer(n) }

func blockBuffer(n int) []byte {
	if n > blockSize {
		return make([]byte, n)
	}
	return blockPool.Get().(*[blockSize]byte)[:n]
}

func releaseBlock(b []byte) {
	if cap(b) == blockSize {
		blockPool.Put((*[blockSize]byte)(b[:blockSize]))
	}
}
