package httpapi

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestPacerBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	busy := true
	p := newPacer(1<<20, func() bool { return busy }, func() time.Time { return now }, nil)
	for i, want := range []time.Duration{0, 0, 500 * time.Millisecond, time.Second} {
		if wait, ok := p.reserve(512 << 10); !ok || wait != want {
			t.Fatalf("answer %d: wait %v ok %v, want %v", i, wait, ok, want)
		}
	}
	// A second's burst past what is owed: more than 10 s is refused and
	// takes nothing.
	if _, ok := p.reserve(10 << 20); ok {
		t.Fatal("an answer owed 11 s was not refused")
	}
	if wait, _ := p.reserve(0); wait != time.Second {
		t.Fatalf("the refused answer was charged: next wait %v", wait)
	}
	// Idle peers: nothing waits, and the budget refills meanwhile.
	busy = false
	now = now.Add(5 * time.Second)
	if wait, ok := p.reserve(100 << 20); !ok || wait != 0 {
		t.Fatalf("idle: wait %v ok %v", wait, ok)
	}
	busy = true
	if wait, _ := p.reserve(1 << 20); wait != 0 {
		t.Fatalf("after idle seconds the burst is not back: wait %v", wait)
	}
}

// While peers transfer, answers come at the budget's pace; with peers idle
// they come at once.
func TestAPIPacedWhileBusy(t *testing.T) {
	var busy atomic.Bool
	const rate = 4 * requestCost // four requests a second
	e := newEnv(t, func(c *Config) { c.APIRate = rate; c.Busy = busy.Load })
	timeRequests := func(n int) time.Duration {
		t0 := time.Now()
		for range n {
			r := e.do("GET", "/alldata", nil)
			if r.status != http.StatusOK || r.json["sessions"] == nil {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
		}
		return time.Since(t0)
	}
	if d := timeRequests(12); d > time.Second {
		t.Fatalf("idle peers: 12 answers took %v", d)
	}
	busy.Store(true)
	// One second of burst (4 answers), then 8 more at 4 a second.
	if d := timeRequests(12); d < 1800*time.Millisecond || d > 4*time.Second {
		t.Fatalf("busy peers: 12 answers took %v, want about 2 s", d)
	}
}

func TestAPIPaceRefusesLongQueue(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.APIRate = 4 << 10; c.Busy = func() bool { return true } })
	t0 := time.Now()
	r := e.do("GET", "/alldata", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "10" || r.errMsg() == "" {
		t.Fatalf("status %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
	if d := time.Since(t0); d < refusedHold {
		t.Fatalf("refusal came after %v, want it held %v", d, refusedHold)
	}
}

// Shutdown does not wait for paced answers: they go out at once.
func TestAPIPaceShutdown(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.APIRate = requestCost / 8; c.Busy = func() bool { return true } })
	done := make(chan resp, 1)
	go func() { done <- e.do("GET", "/torrentdata?infohash=0000000000000000000000000000000000000000", nil) }()
	time.Sleep(300 * time.Millisecond) // the answer now waits about 7 s
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.status != http.StatusNotFound {
			t.Fatalf("paced answer: status %d: %s", r.status, r.raw)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the paced answer did not go out at shutdown")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}
