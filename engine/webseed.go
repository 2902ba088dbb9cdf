package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/storage"
	"gotorrentserver/engine/webseed"
)

// Web seeds (BEP 19): the torrent's url-list servers, fetched beside peers.
//
// A web seed is a pseudo-peer of the picker: an id no connection has
// (negative) with every piece. So its pieces are chosen, shared with peers,
// timed out and raced in endgame like a peer's, and its blocks go the way a
// peer's do (BlockReceived, the piece buffer, the hash lane): every piece is
// hashed and bad data never reaches the disk. A fetch asks for one run of
// blocks, as long as it stays unbroken, since HTTP favours one long range over
// many short ones; it runs as a job on the client's web lane, split into one
// range request per file, and comes back as an event with the bytes.

const (
	// maxWebSeeds bounds the url-list entries used: a torrent listing
	// thousands costs no more than one listing sixteen.
	maxWebSeeds = 16
	// webPerServer is how many fetches one server has in flight: enough to
	// hide a round trip, few enough to be a polite HTTP client.
	webPerServer = 3
	// webRequestBytes bounds one fetch, and so the buffer it holds.
	webRequestBytes = 2 << 20
	// webMaxParts bounds the range requests of one fetch (a run across
	// many small files); one block may still need more.
	webMaxParts = 64
	// webJobTimeout ends a fetch, counted from when it was queued, before
	// the picker's requestTimeout gives its blocks to someone else (who may
	// be the same server, in a newer fetch); what arrived by then is kept.
	webJobTimeout = 45 * time.Second
	// webWorkers bounds the fetches running over all torrents, and so the
	// buffers they fill (webWorkers x webRequestBytes).
	webWorkers = 16
	webQueue   = 256
)

// webLane is the client's side of web seeds: the lane fetches run on and
// the HTTP client (its connection pool) they share. Both are safe for
// concurrent use.
type webLane struct {
	pool    *storage.Pool
	fetch   *webseed.Fetcher
	timeout time.Duration // webJobTimeout; tests shorten it
}

func newWebLane() webLane {
	return webLane{pool: storage.NewPool(webWorkers, webQueue), fetch: webseed.NewFetcher(webseed.Config{}),
		timeout: webJobTimeout}
}

// close runs the fetches still queued (the client's context is cancelled
// by then, so they end at once) and drops idle connections.
func (l *webLane) close() {
	l.pool.Close()
	l.fetch.Close()
}

// webSeeds is the torrent's web seeds, built from its metainfo once it is
// known (a magnet's only after its metadata). Session-owned.
type webSeeds struct {
	list  []*webSeed
	built bool
}

// webSeed is one server. Session-owned.
type webSeed struct {
	id     picker.PeerID
	url    string
	srv    *webseed.Server // nil: the URL is unusable and the seed dropped
	health webseed.Health
	// registered: the picker knows it (working, transferring); its ctx ends
	// what is in flight when it stops being so.
	registered bool
	ctx        context.Context
	cancel     context.CancelFunc
	inflight   int
	down       picker.Rate
	downloaded int64
	// badPieces counts failed pieces it contributed to, this session, for
	// the rule peers live by (maxHashFailures).
	badPieces int
}

// webList is the torrent's web seeds, built on first use.
func (s *Session) webList() []*webSeed {
	if s.web.built || s.mi == nil {
		return s.web.list
	}
	s.web.built = true
	for _, raw := range s.mi.WebSeeds {
		if len(s.web.list) == maxWebSeeds {
			break
		}
		if slices.ContainsFunc(s.web.list, func(w *webSeed) bool { return w.url == raw }) {
			continue
		}
		w := &webSeed{id: picker.PeerID(-1 - len(s.web.list)), url: raw}
		srv, err := webseed.ParseServer(raw)
		if err != nil {
			w.health.Drop(err.Error())
		}
		w.srv = srv
		s.web.list = append(s.web.list, w)
	}
	return s.web.list
}

func (s *Session) webByID(id picker.PeerID) *webSeed {
	if i := int(-1 - id); id < 0 && i < len(s.web.list) {
		return s.web.list[i]
	}
	return nil
}

// webStart gives every usable server a fresh start with the new picker: a
// stop or a recheck is the user's way to retry one that was dropped.
func (s *Session) webStart() {
	for _, w := range s.webList() {
		if w.srv == nil {
			continue
		}
		w.health.Reset()
		w.badPieces = 0
		s.webRegister(w)
	}
	s.dirty = true
}

// webStop ends every fetch; the picker they were registered with is gone.
func (s *Session) webStop() {
	for _, w := range s.web.list {
		if w.registered {
			w.cancel()
			w.registered = false
		}
	}
}

func (s *Session) webRegister(w *webSeed) {
	w.ctx, w.cancel = context.WithCancel(s.c.ctx)
	s.dl.pick.PeerHaveAll(w.id)
	w.registered = true
}

// webUnregister takes a server out of the picker, freeing what it was
// asked for, and ends its fetches in flight.
func (s *Session) webUnregister(w *webSeed) {
	if !w.registered {
		return
	}
	w.cancel()
	w.registered = false
	if s.dl.pick != nil {
		s.dl.pick.PeerGone(w.id)
	}
}

// fillWebSeeds starts fetches on every ready server while it has room.
func (s *Session) fillWebSeeds() {
	for _, w := range s.web.list {
		if w.srv == nil {
			continue
		}
		if !w.registered {
			if !w.health.Ready(s.now) {
				continue
			}
			s.webRegister(w)
			s.dirty = true
		}
		for w.inflight < webPerServer {
			if s.limits.downBlocked(s) || s.verifyBacklogFull() {
				return
			}
			if !s.webFetch(w) {
				break
			}
		}
	}
}

// webFetch picks a run of blocks for w and submits its fetch; false when
// there is nothing to ask for or no room on the lane.
func (s *Session) webFetch(w *webSeed) bool {
	budget := int64(webRequestBytes)
	if allowed, limited := s.limits.downAllowance(s); limited {
		budget = min(budget, allowed+blockSize)
	}
	reqs := s.webPick(w.id, int(max(1, budget/blockSize)))
	if len(reqs) == 0 {
		return false
	}
	parts, reqs := s.webPlan(w, reqs)
	var total int64
	for _, q := range reqs {
		total += int64(q.Length)
	}
	r := webResult{w: w, gen: s.life.gen, epoch: w.health.Epoch, reqs: reqs}
	ctx, fetch, bufs, now := w.ctx, s.c.web.fetch, s.c.bufs, s.c.cfg.Now
	// Network time is real time, whatever clock the session runs on.
	timeout := s.c.web.timeout
	deadline := time.Now().Add(timeout)
	ok := s.trySubmit(s.c.web.pool, func() event {
		if time.Until(deadline) < timeout/2 {
			// Queued behind other torrents' fetches for most of its
			// time: no fault of the server's, and no time left to ask it.
			r.late = true
			return evFunc(func(s *Session) { s.webDone(r) })
		}
		// The buffer is taken here, not when queued, so only running
		// fetches hold one.
		r.buf = bufs.get(int(total), max(int(total), webRequestBytes), now())
		jctx, cancel := context.WithDeadline(ctx, deadline)
		r.n, r.err = fetch.Fetch(jctx, parts, r.buf)
		r.ownDeadline = errors.Is(r.err, context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		return evFunc(func(s *Session) { s.webDone(r) })
	})
	if !ok {
		for _, q := range reqs {
			s.dl.pick.RequestCancelled(w.id, q)
		}
		return false
	}
	w.inflight++
	// Tokens are taken when asking, as for peers, so what is in flight is
	// paid for.
	s.limits.down.take(total)
	s.limits.gdown.take(&s.c.down, total)
	return true
}

// webPick picks up to want blocks for a web seed: where the picker would
// start (a started piece's free blocks, else the rarest or next piece),
// then on through that piece and the ones after it while the run is
// unbroken. In endgame it races blocks as a peer would.
func (s *Session) webPick(id picker.PeerID, want int) []picker.Request {
	pick := s.dl.pick
	if pick.InEndgame() {
		return pick.Pick(id, nil, want, s.now)
	}
	reqs := pick.Pick(id, nil, 1, s.now)
	if len(reqs) == 0 {
		return nil
	}
	piece := reqs[0].Piece
	reqs = append(reqs, pick.PickAllowedFast(id, nil, []int{piece}, want-1, s.now)...)
	for len(reqs) < want && piece+1 < s.mi.NumPieces() && pick.CanStart() && s.runReaches(reqs, piece) {
		piece++
		more := pick.PickAllowedFast(id, nil, []int{piece}, want-len(reqs), s.now)
		if len(more) == 0 {
			break
		}
		reqs = append(reqs, more...)
	}
	return reqs
}

// runReaches: reqs are one unbroken run of bytes ending at piece's end.
func (s *Session) runReaches(reqs []picker.Request, piece int) bool {
	sortRequests(reqs)
	for i := 1; i < len(reqs); i++ {
		if s.reqOffset(reqs[i]) != s.reqOffset(reqs[i-1])+int64(reqs[i-1].Length) {
			return false
		}
	}
	last := reqs[len(reqs)-1]
	return last.Piece == piece && int64(last.Begin+last.Length) == s.mi.PieceSize(piece)
}

func (s *Session) reqOffset(q picker.Request) int64 {
	return int64(q.Piece)*s.mi.PieceLength + int64(q.Begin)
}

func sortRequests(reqs []picker.Request) {
	slices.SortFunc(reqs, func(a, b picker.Request) int {
		if a.Piece != b.Piece {
			return a.Piece - b.Piece
		}
		return a.Begin - b.Begin
	})
}

// webPlan orders reqs by offset and maps them onto range requests, one per
// file and unbroken run; blocks past webMaxParts requests are given back
// (but the first block always goes, however many files it spans). The
// fetched bytes are then the blocks one after another.
func (s *Session) webPlan(w *webSeed, reqs []picker.Request) ([]webseed.Part, []picker.Request) {
	sortRequests(reqs)
	var parts []webseed.Part
	kept := 0
	for i, q := range reqs {
		bp := w.srv.Plan(s.mi, s.reqOffset(q), int64(q.Length))
		joins := len(parts) > 0 && len(bp) > 0 && follows(parts[len(parts)-1], bp[0])
		added := len(bp)
		if joins {
			added--
		}
		if i > 0 && len(parts)+added > webMaxParts {
			break
		}
		if joins {
			parts[len(parts)-1].Length += bp[0].Length
			bp = bp[1:]
		}
		parts = append(parts, bp...)
		kept++
	}
	for _, q := range reqs[kept:] {
		s.dl.pick.RequestCancelled(w.id, q)
	}
	return parts, reqs[:kept]
}

// follows: b continues a in the same file, so one range request covers both.
func follows(a, b webseed.Part) bool {
	return a.URL == b.URL && a.FileLength == b.FileLength && a.Offset+a.Length == b.Offset
}

// webResult is a fetch's outcome: the first n bytes of buf are its blocks'
// data, in order.
type webResult struct {
	w          *webSeed
	gen, epoch uint32
	reqs       []picker.Request
	buf        []byte
	n          int
	err        error
	// ownDeadline: the fetch ran out of webJobTimeout, which a slow server
	// may do with a large run while still making progress.
	ownDeadline bool
	// late: it waited on the lane too long to be sent at all.
	late bool
}

func (s *Session) webDone(r webResult) {
	w := r.w
	w.inflight--
	if r.buf != nil {
		defer s.recycle(r.buf)
	}
	// A fetch from an earlier run, or from before the server was backed
	// off or dropped, is over: its requests were freed when that happened,
	// and may since have gone to a newer fetch.
	if r.gen != s.life.gen || r.epoch != w.health.Epoch || s.dl.pick == nil {
		return
	}
	if s.life.state == StateDownloading {
		off := 0
		for _, q := range r.reqs {
			end := off + q.Length
			if end <= r.n {
				s.webBlock(w, q, r.buf[off:end])
			} else {
				s.dl.pick.RequestCancelled(w.id, q)
			}
			off = end
		}
	}
	// Complete or not, the answer says how the server is doing.
	s.dirty = true
	switch {
	case r.late:
	case r.err == nil:
		w.health.Succeeded()
	case r.ownDeadline && r.n > 0:
		// Slow but moving: not an outage.
	default:
		s.webFailed(w, r.err)
	}
}

// webBlock takes one block from a web seed the way onPiece takes a peer's.
func (s *Session) webBlock(w *webSeed, q picker.Request, data []byte) {
	n := int64(len(data))
	w.down.Add(s.now, n)
	s.stats.down.Add(s.now, n)
	cancels, complete, dup, err := s.dl.pick.BlockReceived(w.id, q.Piece, q.Begin, q.Length)
	if err != nil || dup {
		// Raced in endgame and beaten, or timed out and given away.
		s.stats.wasted += n
		return
	}
	s.cancel(cancels)
	w.downloaded += n
	s.stats.downloaded += n
	s.keepBlock(q.Piece, q.Begin, data, complete)
}

// webFailed backs a server off after a failure, or drops it.
func (s *Session) webFailed(w *webSeed, err error) {
	w.health.Failed(s.now, err, webseed.RetryAfter(err))
	if w.health.Status != webseed.Working {
		s.webUnregister(w)
	}
	s.dirty = true
	s.logAt(slog.LevelWarn, "web seed failed", "url", w.url, "error", err.Error(), "status", w.health.Status.String())
}

// webPieceFailed deals with the web seeds among a failed piece's
// contributors by the rule peers live by: one that sent all of it, or that
// contributed to maxHashFailures failed pieces, is dropped with every piece
// it had a hand in, as such a peer is banned. One that sent part of it is
// backed off meanwhile, so others, or it alone, fetch the piece again.
func (s *Session) webPieceFailed(piece int, contributors []picker.PeerID) {
	for _, id := range contributors {
		w := s.webByID(id)
		if w == nil || w.health.Status == webseed.Dropped {
			continue
		}
		w.badPieces++
		var why string
		switch {
		case len(contributors) == 1:
			why = fmt.Sprintf("engine: sent piece %d, which failed its hash", piece)
		case w.badPieces >= maxHashFailures:
			why = fmt.Sprintf("engine: contributed to %d pieces that failed their hash", w.badPieces)
		default:
			s.webFailed(w, fmt.Errorf("engine: contributed to piece %d, which failed its hash", piece))
			continue
		}
		w.health.Drop(why)
		s.webUnregister(w)
		s.discardFrom(w.id)
		s.dirty = true
		s.logAt(slog.LevelWarn, "web seed dropped", "url", w.url, "reason", why)
	}
}

// webBusy: some web seed has fetches in flight.
func (s *Session) webBusy() bool {
	return slices.ContainsFunc(s.web.list, func(w *webSeed) bool { return w.inflight > 0 })
}

// webNextRetry is when the first server backing off may be asked again.
func (s *Session) webNextRetry() (time.Time, bool) {
	var at time.Time
	for _, w := range s.web.list {
		if w.health.Status == webseed.Backoff && (at.IsZero() || w.health.RetryAt.Before(at)) {
			at = w.health.RetryAt
		}
	}
	return at, !at.IsZero()
}

// WebSeedSnapshot is one web seed as last heard.
type WebSeedSnapshot struct {
	URL        string
	Status     string // "working", "backoff" or "dropped"
	Downloaded int64  // payload bytes taken from it, this session
	DownRate   int64
	InFlight   int // fetches under way
	Failures   int // in a row
	LastError  string
	NextRetry  time.Time // while backing off
}

func (s *Session) webSnapshots() []WebSeedSnapshot {
	list := s.webList()
	if len(list) == 0 {
		return nil
	}
	out := make([]WebSeedSnapshot, 0, len(list))
	for _, w := range list {
		out = append(out, WebSeedSnapshot{
			URL: w.url, Status: w.health.Status.String(), Downloaded: w.downloaded,
			DownRate: w.down.Shown(s.now, rateIdle), InFlight: w.inflight, Failures: w.health.Failures,
			LastError: w.health.LastError, NextRetry: w.health.RetryAt,
		})
	}
	return out
}

func webSeedsEqual(a, b []WebSeedSnapshot) bool { return slices.Equal(a, b) }
