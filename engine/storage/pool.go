package storage

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Kind says what a Job does.
type Kind uint8

const (
	// KindWrite: Storage.WriteBlock(Piece, Begin, Data).
	KindWrite Kind = iota + 1
	// KindRead: Storage.ReadBlock(Piece, Begin, Data); Data is the
	// destination and comes back filled in Result.Job.Data.
	KindRead
	// KindHash: Storage.HashPiece(Piece); Result.OK is the verdict.
	KindHash
	// KindHashAndWrite: Storage.HashAndWritePiece(Piece, Data); Result.OK
	// is the verdict and a bad piece is not written.
	KindHashAndWrite
	// KindReadShared: Storage.ReadBlockShared(Piece, Begin, Data); the
	// bytes are in Result.Block, which the receiver must give back with
	// Result.Release when that is not nil.
	KindReadShared
	// KindFunc: Func(). The engine's jobs (stats, creating files, waiting
	// on a recheck, DHT lookups) are functions on the same bounded pools as
	// the block I/O, so every piece of blocking work goes one way.
	KindFunc
)

// String names the kind for logs. Safe for concurrent use.
func (k Kind) String() string {
	switch k {
	case KindWrite:
		return "write"
	case KindRead:
		return "read"
	case KindHash:
		return "hash"
	case KindHashAndWrite:
		return "hash-and-write"
	case KindReadShared:
		return "read-shared"
	case KindFunc:
		return "func"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Job is one unit of disk or hashing work. It is a plain value: the session
// builds it, and gets it back in the Result to match the completion up.
type Job struct {
	Kind    Kind
	Storage *Storage
	Piece   int
	Begin   int64
	Data    []byte
	// Func is KindFunc's work; it reports its own outcome.
	Func func()
	// Done receives the outcome on a worker goroutine. It should only hand
	// the Result over (post it to the session's inbox) and return: a slow
	// Done stalls a worker. May be nil.
	Done func(Result)
}

// Result is the completion of a Job.
type Result struct {
	Job Job
	// OK is the hash verdict for KindHash and KindHashAndWrite, and
	// Err == nil for the other kinds.
	OK  bool
	Err error
	// Block and Release are KindReadShared's answer (see ReadBlockShared).
	Block   []byte
	Release func()
}

// Pool runs Jobs on a fixed number of workers fed by a bounded queue. Use
// one pool for disk I/O and another, sized to the cores, for hashing, so a
// recheck cannot starve uploads. All methods are safe for concurrent use.
type Pool struct {
	jobs     chan Job
	quit     chan struct{} // closed when Close starts; wakes blocked Submits
	mu       sync.RWMutex  // Submit holds it read-locked while sending
	closed   bool
	canceled atomic.Bool
	busy     atomic.Int32 // workers running a job
	workers  int
	once     sync.Once
	wg       sync.WaitGroup
}

// NewPool starts workers goroutines (the number of CPUs when <= 0) with a
// queue of queue pending jobs (at least 1). Safe to call from any goroutine.
func NewPool(workers, queue int) *Pool {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	p := &Pool{jobs: make(chan Job, max(queue, 1)), quit: make(chan struct{}), workers: workers}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *Pool) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		p.busy.Add(1)
		var r Result
		if p.canceled.Load() {
			r = Result{Job: j, Err: ErrCanceled}
		} else {
			r = run(j)
		}
		if j.Done != nil {
			j.Done(r)
		}
		p.busy.Add(-1)
	}
}

func run(j Job) Result {
	r := Result{Job: j}
	if j.Kind == KindFunc && j.Func != nil {
		j.Func()
		r.OK = true
		return r
	}
	s := j.Storage
	if s == nil {
		r.Err = fmt.Errorf("storage: %v job without a storage", j.Kind)
		return r
	}
	switch j.Kind {
	case KindWrite:
		r.Err = s.WriteBlock(j.Piece, j.Begin, j.Data)
		r.OK = r.Err == nil
	case KindRead:
		r.Err = s.ReadBlock(j.Piece, j.Begin, j.Data)
		r.OK = r.Err == nil
	case KindReadShared:
		r.Block, r.Release, r.Err = s.ReadBlockShared(j.Piece, j.Begin, j.Data)
		r.OK = r.Err == nil
	case KindHash:
		r.OK, r.Err = s.HashPiece(j.Piece)
	case KindHashAndWrite:
		r.OK, r.Err = s.HashAndWritePiece(j.Piece, j.Data)
	default:
		r.Err = fmt.Errorf("storage: unknown job kind %v", j.Kind)
	}
	return r
}

// TrySubmit queues j without blocking and reports whether it was accepted;
// false means the queue is full or the pool closed, and the caller should
// apply backpressure (stop requesting blocks, retry on a later event). This
// is the method a session loop uses. Safe for concurrent use.
func (p *Pool) TrySubmit(j Job) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

// Submit queues j, waiting for room until ctx ends or the pool closes. It
// blocks, so it is for helper goroutines such as Recheck, never for a
// session loop. Safe for concurrent use.
func (p *Pool) Submit(ctx context.Context, j Job) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPoolClosed
	}
	select {
	case p.jobs <- j:
		return nil
	case <-p.quit:
		return ErrPoolClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SubmitWrite is TrySubmit of a KindWrite job.
func (p *Pool) SubmitWrite(s *Storage, piece int, begin int64, data []byte, done func(Result)) bool {
	return p.TrySubmit(Job{Kind: KindWrite, Storage: s, Piece: piece, Begin: begin, Data: data, Done: done})
}

// SubmitReadShared is TrySubmit of a KindReadShared job; dst is where the
// bytes go when they cannot be shared from the cache.
func (p *Pool) SubmitReadShared(s *Storage, piece int, begin int64, dst []byte, done func(Result)) bool {
	return p.TrySubmit(Job{Kind: KindReadShared, Storage: s, Piece: piece, Begin: begin, Data: dst, Done: done})
}

// SubmitHash is TrySubmit of a KindHash job.
func (p *Pool) SubmitHash(s *Storage, piece int, done func(Result)) bool {
	return p.TrySubmit(Job{Kind: KindHash, Storage: s, Piece: piece, Done: done})
}

// SubmitHashAndWrite is TrySubmit of a KindHashAndWrite job.
func (p *Pool) SubmitHashAndWrite(s *Storage, piece int, data []byte, done func(Result)) bool {
	return p.TrySubmit(Job{Kind: KindHashAndWrite, Storage: s, Piece: piece, Data: data, Done: done})
}

// Queued reports how many jobs wait for a worker. Safe for concurrent use.
func (p *Pool) Queued() int { return len(p.jobs) }

// Busy reports how many workers are running a job (its Done included).
// Safe for concurrent use.
func (p *Pool) Busy() int { return int(p.busy.Load()) }

// Workers is the number of workers. Safe for concurrent use.
func (p *Pool) Workers() int { return p.workers }

// Close stops accepting jobs, runs every job already queued, and returns
// once all workers have exited, so every accepted job has had its Done
// called. Safe to call from any goroutine except a Done callback, more than
// once.
func (p *Pool) Close() {
	p.once.Do(func() {
		close(p.quit) // release Submits blocked on a full queue
		p.mu.Lock()   // wait for Submits that are mid-send
		p.closed = true
		close(p.jobs)
		p.mu.Unlock()
	})
	p.wg.Wait()
}

// Cancel is Close without doing the queued work: their Done callbacks
// receive ErrCanceled. A job already running completes normally. Same
// calling rules as Close.
func (p *Pool) Cancel() {
	p.canceled.Store(true)
	p.Close()
}
