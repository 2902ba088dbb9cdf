package storage

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPoolDeliversResults(t *testing.T) {
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 30)
	s := openT(t, t.TempDir(), mi, Options{})
	io, hash := NewPool(2, 4), NewPool(2, 4)
	defer io.Close()
	defer hash.Close()

	results := make(chan Result, 64) // the session inbox stand-in
	post := func(r Result) { results <- r }
	n := mi.NumPieces()
	for p := range n {
		pd := pieceData(mi, data, p)
		if err := io.Submit(context.Background(), Job{Kind: KindWrite, Storage: s, Piece: p, Data: pd, Done: post}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if r := <-results; r.Err != nil || !r.OK || r.Job.Kind != KindWrite {
			t.Fatalf("write result %+v", r)
		}
	}
	verdicts := map[int]bool{}
	for p := range n {
		for !hash.SubmitHash(s, p, post) {
			time.Sleep(time.Millisecond) // backpressure: retry later
		}
	}
	for range n {
		r := <-results
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		verdicts[r.Job.Piece] = r.OK
	}
	for p := range n {
		if !verdicts[p] {
			t.Errorf("piece %d: no passing hash result", p)
		}
	}
	dst := make([]byte, 300)
	if !io.SubmitReadShared(s, 1, 600, dst, post) {
		t.Fatal("SubmitReadShared refused on an idle pool")
	}
	r := <-results
	if r.Err != nil || !bytes.Equal(r.Block, pieceData(mi, data, 1)[600:900]) {
		t.Fatalf("read result: err=%v", r.Err)
	}
	if r.Release != nil {
		r.Release()
	}
	if !io.SubmitHashAndWrite(s, 0, make([]byte, mi.PieceSize(0)), post) {
		t.Fatal("SubmitHashAndWrite refused")
	}
	if r := <-results; r.OK || r.Err != nil {
		t.Fatalf("zeros accepted as piece 0: %+v", r)
	}
}

// blockingPool returns a 1-worker pool whose worker is stuck in the Done of
// a first job until release is closed.
func blockingPool(t *testing.T, queue int) (p *Pool, release chan struct{}) {
	p = NewPool(1, queue)
	release = make(chan struct{})
	started := make(chan struct{})
	ok := p.TrySubmit(Job{Kind: KindHash, Done: func(Result) {
		close(started)
		<-release
	}})
	if !ok {
		t.Fatal("first TrySubmit refused")
	}
	<-started
	return p, release
}

func TestPoolTrySubmitFullAndClose(t *testing.T) {
	p, release := blockingPool(t, 2)
	var mu sync.Mutex
	var got []error
	done := func(r Result) { mu.Lock(); got = append(got, r.Err); mu.Unlock() }
	for i := range 2 {
		if !p.TrySubmit(Job{Kind: Kind(99), Storage: &Storage{}, Done: done}) {
			t.Fatalf("TrySubmit %d refused with room in the queue", i)
		}
	}
	if p.TrySubmit(Job{Kind: KindHash, Done: done}) {
		t.Fatal("TrySubmit accepted into a full queue")
	}
	if p.Queued() != 2 {
		t.Fatalf("Queued = %d, want 2", p.Queued())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Submit(ctx, Job{Kind: KindHash}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit into a full queue: %v, want deadline", err)
	}
	close(release)
	p.Close() // drains: both queued jobs run
	if len(got) != 2 || got[0] == nil || errors.Is(got[0], ErrCanceled) {
		t.Fatalf("drained results %v, want two unknown-kind errors", got)
	}
	if p.TrySubmit(Job{}) {
		t.Fatal("TrySubmit accepted after Close")
	}
	if err := p.Submit(context.Background(), Job{}); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	p.Close() // idempotent
}

func TestPoolCancelAndBlockedSubmit(t *testing.T) {
	p, release := blockingPool(t, 1)
	var mu sync.Mutex
	var got []error
	done := func(r Result) { mu.Lock(); got = append(got, r.Err); mu.Unlock() }
	if !p.TrySubmit(Job{Kind: KindHash, Done: done}) {
		t.Fatal("TrySubmit refused")
	}
	// A Submit blocked on the full queue is released by Close with an error.
	blocked := make(chan error, 1)
	go func() { blocked <- p.Submit(context.Background(), Job{Kind: KindHash, Done: done}) }()
	time.Sleep(10 * time.Millisecond)
	cancelled := make(chan struct{})
	go func() { p.Cancel(); close(cancelled) }()
	var submitErr error
	select {
	case submitErr = <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("Submit stayed blocked after Cancel")
	}
	close(release)
	<-cancelled
	// The blocked Submit either got in before the close (then its job was
	// cancelled too) or was refused.
	want := 1
	if submitErr == nil {
		want = 2
	} else if !errors.Is(submitErr, ErrPoolClosed) {
		t.Fatalf("blocked Submit: %v", submitErr)
	}
	if len(got) != want {
		t.Fatalf("%d callbacks, want %d", len(got), want)
	}
	for _, err := range got {
		if !errors.Is(err, ErrCanceled) {
			t.Fatalf("queued job after Cancel: %v, want ErrCanceled", err)
		}
	}
}

// TestConcurrentMixedJobsAndClose runs writes, cached reads and hashes of one
// torrent on a pool at once, then closes the storage while jobs are still
// queued: every job must complete (some with ErrClosed) and no descriptor may
// stay open.
func TestConcurrentMixedJobsAndClose(t *testing.T) {
	root := t.TempDir()
	mi, data := newTorrent(t, "multi", 1000, mixedFiles, 90)
	s := openT(t, root, mi, Options{MaxOpenFiles: 2, Cache: NewCache(2500)})
	pool := NewPool(4, 8)
	defer pool.Close()
	n := mi.NumPieces()
	results := make(chan Result, 1024)
	post := func(r Result) { results <- r }
	submitted := 0
	for round := range 20 {
		for p := range n {
			pd := pieceData(mi, data, p)
			jobs := []Job{
				{Kind: KindWrite, Storage: s, Piece: p, Data: pd, Done: post},
				{Kind: KindReadShared, Storage: s, Piece: p, Data: make([]byte, len(pd)), Done: post},
				{Kind: KindHash, Storage: s, Piece: p, Done: post},
			}
			for _, j := range jobs {
				if err := pool.Submit(context.Background(), j); err != nil {
					t.Fatal(err)
				}
				submitted++
			}
		}
		if round == 15 {
			go s.Close()
		}
	}
	closedSeen := 0
	for range submitted {
		r := <-results
		switch {
		case errors.Is(r.Err, ErrClosed):
			closedSeen++
		case r.Err != nil && !errors.Is(r.Err, ErrNotPresent):
			t.Fatalf("%v piece %d: %v", r.Job.Kind, r.Job.Piece, r.Err)
		case r.Err == nil && r.Job.Kind == KindReadShared:
			// Every write stores the same bytes, so a read may only see
			// them or a not-yet-written hole (zeros), byte by byte.
			want := pieceData(mi, data, r.Job.Piece)
			for i, b := range r.Block {
				if b != want[i] && b != 0 {
					t.Fatalf("read of piece %d returned a foreign byte at %d", r.Job.Piece, i)
				}
			}
			if r.Release != nil {
				r.Release()
			}
		}
	}
	if closedSeen == 0 {
		t.Fatal("no job observed the Close")
	}
	s.Close()
	if n := openFDsUnder(t, root); n != 0 {
		t.Fatalf("%d descriptors open after Close", n)
	}
}
