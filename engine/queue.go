package engine

import (
	"fmt"
	"slices"
	"sync"

	"gotorrentserver/metainfo"
)

// queueOrder is every torrent's place in the queue, first added first
// unless the operator moved it. Safe for concurrent use.
type queueOrder struct {
	mu    sync.Mutex
	order []metainfo.Hash
}

func (q *queueOrder) add(ih metainfo.Hash) {
	q.mu.Lock()
	q.order = append(q.order, ih)
	q.mu.Unlock()
}

func (q *queueOrder) remove(ih metainfo.Hash) {
	q.mu.Lock()
	if i := slices.Index(q.order, ih); i >= 0 {
		q.order = slices.Delete(q.order, i, i+1)
	}
	q.mu.Unlock()
}

func (q *queueOrder) list() []metainfo.Hash {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.order)
}

// QueueOrder lists every torrent in queue order (position 0 first). Safe
// for concurrent use.
func (c *Client) QueueOrder() []metainfo.Hash { return c.queue.list() }

// RestoreQueue puts the torrents named in order first, in that order (a
// saved queue), keeping the others after them as they were. Unknown
// hashes are ignored.
func (c *Client) RestoreQueue(order []metainfo.Hash) {
	q := &c.queue
	q.mu.Lock()
	seen := make(map[metainfo.Hash]bool, len(q.order))
	for _, ih := range q.order {
		seen[ih] = true
	}
	out := make([]metainfo.Hash, 0, len(q.order))
	for _, ih := range order {
		if seen[ih] {
			out = append(out, ih)
			delete(seen, ih)
		}
	}
	for _, ih := range q.order {
		if seen[ih] {
			out = append(out, ih)
		}
	}
	q.order = out
	q.mu.Unlock()
	c.kickQueue()
}

// SetQueuePosition moves a torrent to position pos (0 = first; past the
// end = last) and saves the order before answering.
func (c *Client) SetQueuePosition(ih metainfo.Hash, pos int) error {
	if pos < 0 {
		return fmt.Errorf("%w: queue position must not be negative", ErrBadSetting)
	}
	c.queueMu.Lock() // orders saves, so the file holds the latest order
	defer c.queueMu.Unlock()
	q := &c.queue
	q.mu.Lock()
	i := slices.Index(q.order, ih)
	if i < 0 {
		q.mu.Unlock()
		return ErrNotFound
	}
	q.order = slices.Delete(q.order, i, i+1)
	pos = min(pos, len(q.order))
	q.order = slices.Insert(q.order, pos, ih)
	order := slices.Clone(q.order)
	q.mu.Unlock()
	if gp, ok := c.cfg.Persister.(GlobalPersister); ok {
		if err := gp.SaveQueue(order); err != nil {
			return err
		}
	}
	c.kickQueue()
	return nil
}

// kickQueue asks the ticker for a queue pass now rather than at its next
// tick. Never blocks.
func (c *Client) kickQueue() {
	select {
	case c.queueKick <- struct{}{}:
	default:
	}
}

// queueEvent parks a running torrent in state queued: its peers close, as
// for a stop, but it stays wanted and starts again when its turn comes.
type queueEvent struct{}

func (queueEvent) handle(s *Session) {
	switch s.life.state {
	case StateStopped:
		if s.settings.Stopped || s.queued {
			return
		}
	case StateDownloading, StateSeeding, StateMetadata:
		s.stop(false)
	default:
		return // checking, moving or in error: not the queue's to park
	}
	s.queued = true
	s.dirty = true
	s.publish()
}

// unqueueEvent starts a queued torrent whose turn came.
type unqueueEvent struct{}

func (unqueueEvent) handle(s *Session) {
	if !s.queued {
		return
	}
	s.queued = false
	s.dirty = true
	if s.settings.Stopped || s.life.state != StateStopped {
		s.publish()
		return
	}
	s.start(nil)
	s.publish()
}

// queuing reports whether the queue limits anything.
func queuing(g Global) bool { return g.MaxActiveDownloads > 0 || g.MaxActiveSeeds > 0 }

// queuePass walks the torrents in queue order and starts or parks each so
// that at most MaxActiveDownloads download and MaxActiveSeeds seed, the
// first in the queue first. Torrents the user stopped or in error are
// outside the queue; a checking torrent holds a download slot until its
// check says what it is, and a moving one the slot it had. It reads only snapshots and posts
// events (the ticker runs it), so a session's change shows at the next
// pass: both events are idempotent.
func (c *Client) queuePass() {
	g := c.Global()
	downs, seeds := 0, 0
	for _, ih := range c.queue.list() {
		s := c.Session(ih)
		if s == nil {
			continue
		}
		sn := s.Snapshot()
		if sn == nil || sn.Stopped || sn.State == StateError {
			continue
		}
		if sn.State == StateStopped {
			continue // between runs (a magnet's metadata arriving, shutting down)
		}
		var allowed bool
		if sn.seedLike() {
			seeds++
			allowed = g.MaxActiveSeeds == 0 || seeds <= g.MaxActiveSeeds
		} else {
			downs++
			allowed = g.MaxActiveDownloads == 0 || downs <= g.MaxActiveDownloads
		}
		switch {
		case sn.State == StateChecking || sn.State == StateMoving:
		case allowed && sn.State == StateQueued:
			s.post(unqueueEvent{})
		case !allowed && sn.State != StateQueued:
			s.post(queueEvent{})
		}
	}
}

// seedLike: the torrent has everything it wants, so in the queue it takes a
// seed's slot.
func (sn *Snapshot) seedLike() bool {
	if sn.State == StateSeeding {
		return true
	}
	return sn.State != StateMetadata && sn.State != StateChecking && sn.NumPieces > 0 && sn.Left == 0
}

// QueuePosition is a torrent's place in the queue (0 first), -1 if unknown.
// Safe for concurrent use.
func (c *Client) QueuePosition(ih metainfo.Hash) int {
	c.queue.mu.Lock()
	defer c.queue.mu.Unlock()
	return slices.Index(c.queue.order, ih)
}
