package engine

import (
	"sync"
)

// event is something that happened to a session: a peer message, a disk or
// hash completion, a tracker reply, a tick or a command. handle runs on the
// session's single logical thread and may touch every session field.
type event interface {
	handle(s *Session)
}

// inbox queues events for one session. Posting never blocks and is safe from
// any goroutine (event loops, pool workers, API handlers). The scheduled flag
// guarantees that at most one runner handles a session at a time, which is
// what makes the session's own fields lock-free.
type inbox struct {
	mu        sync.Mutex
	events    []event
	spare     []event
	scheduled bool
}

// scheduler runs sessions that have events on a fixed set of goroutines, so
// thousands of idle torrents cost no goroutines at all.
type scheduler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*Session
	head   int
	closed bool
	wg     sync.WaitGroup
}

func newScheduler(runners int) *scheduler {
	sc := &scheduler{}
	sc.cond = sync.NewCond(&sc.mu)
	for range runners {
		sc.wg.Add(1)
		go sc.run()
	}
	return sc
}

// post appends ev to s's inbox and schedules s if it was idle.
// Safe for concurrent use.
func (sc *scheduler) post(s *Session, ev event) {
	s.in.mu.Lock()
	s.in.events = append(s.in.events, ev)
	wake := !s.in.scheduled
	s.in.scheduled = true
	s.in.mu.Unlock()
	if wake {
		sc.push(s)
	}
}

func (sc *scheduler) push(s *Session) {
	sc.mu.Lock()
	sc.queue = append(sc.queue, s)
	sc.mu.Unlock()
	sc.cond.Signal()
}

func (sc *scheduler) pop() *Session {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for sc.head == len(sc.queue) && !sc.closed {
		sc.cond.Wait()
	}
	if sc.head == len(sc.queue) {
		return nil
	}
	s := sc.queue[sc.head]
	sc.queue[sc.head] = nil
	sc.head++
	if sc.head == len(sc.queue) {
		sc.queue, sc.head = sc.queue[:0], 0
	}
	return s
}

func (sc *scheduler) run() {
	defer sc.wg.Done()
	for {
		s := sc.pop()
		if s == nil {
			return
		}
		sc.drain(s)
	}
}

// drain handles one batch of s's events, then either reschedules s (more
// arrived meanwhile) or marks it idle. A batch, not everything, so one busy
// torrent cannot monopolise a runner.
func (sc *scheduler) drain(s *Session) {
	s.in.mu.Lock()
	batch := s.in.events
	s.in.events = s.in.spare[:0]
	s.in.mu.Unlock()

	// An idle session may go many seconds without a tick: events must not
	// see a stale clock.
	s.now = s.c.cfg.Now()
	for i, ev := range batch {
		ev.handle(s)
		batch[i] = nil
	}
	s.afterBatch()

	s.in.mu.Lock()
	s.in.spare = batch[:0]
	more := len(s.in.events) > 0
	if !more {
		s.in.scheduled = false
	}
	s.in.mu.Unlock()
	if more {
		sc.push(s)
	}
}

func (sc *scheduler) close() {
	sc.mu.Lock()
	sc.closed = true
	sc.mu.Unlock()
	sc.cond.Broadcast()
	sc.wg.Wait()
}
