package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bitset"
)

// Recheck hashes every piece of s on pool and returns the set of pieces
// whose data on disk is intact. Missing or short files (and files changed
// while held open) only make pieces absent; other disk errors, among them
// ErrUnsafePath for a file behind a symlink leaving the root, abort the
// recheck and are returned. progress,
// when non-nil, is called on the caller's goroutine with the number of
// pieces hashed so far, at least once at the end. Recheck blocks until every
// job it queued has finished, so run it on its own goroutine, never on a
// session loop. On cancellation it returns ctx.Err() and the partial set.
func Recheck(ctx context.Context, s *Storage, pool *Pool, progress func(done, total int)) (*bitset.BitSet, error) {
	n := s.mi.NumPieces()
	have := bitset.New(uint(n))
	var (
		mu       sync.Mutex
		finished int
		firstErr error
		failed   atomic.Bool
	)
	tick := make(chan struct{}, 1)
	onDone := func(r Result) {
		mu.Lock()
		switch {
		case r.Err != nil:
			if firstErr == nil {
				firstErr = r.Err
			}
			failed.Store(true)
		case r.OK:
			have.Set(uint(r.Job.Piece))
		}
		finished++
		mu.Unlock()
		select { // never block a worker: one pending wake-up is enough
		case tick <- struct{}{}:
		default:
		}
	}

	// Submitting blocks when the queue is full, and waiting for results
	// must go on meanwhile, so the two run on separate goroutines.
	submitted := make(chan int, 1)
	go func() {
		k := 0
		for i := 0; i < n && !failed.Load() && ctx.Err() == nil; i++ {
			if pool.Submit(ctx, Job{Kind: KindHash, Storage: s, Piece: i, Done: onDone}) != nil {
				break
			}
			k++
		}
		submitted <- k
	}()

	total, last := -1, -1
	for {
		mu.Lock()
		d := finished
		mu.Unlock()
		if progress != nil && d != last {
			progress(d, n)
			last = d
		}
		if d == total {
			break
		}
		select {
		case <-tick:
		case total = <-submitted:
			submitted = nil
		}
	}

	mu.Lock()
	err := firstErr
	mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && total < n {
		err = ErrPoolClosed // Submit refused without a cancelled ctx
	}
	if errors.Is(err, ErrCanceled) && ctx.Err() != nil {
		err = ctx.Err()
	}
	return have, err
}
