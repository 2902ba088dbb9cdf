package ratelimit

import (
	"testing"
	"time"
)

func TestBucketAverageAndBurst(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b Bucket
	b.Set(1000, 2000)
	b.Refill(t0)
	if !b.Blocked() {
		t.Fatal("a new limited bucket starts empty")
	}
	// Ten seconds of refills at 1000/s: work taken while not blocked adds
	// up to the rate, with at most the burst on top.
	moved := 0.0
	for i := range 100 {
		b.Refill(t0.Add(time.Duration(i+1) * 100 * time.Millisecond))
		for !b.Blocked() {
			b.Take(300)
			moved += 300
		}
	}
	if moved < 9700 || moved > 10300 {
		t.Fatalf("moved %.0f in 10 s at 1000/s", moved)
	}
	b.Refill(t0.Add(time.Hour))
	if b.Tokens() != 2000 {
		t.Fatalf("saved %.0f after an idle hour, burst 2000", b.Tokens())
	}
	b.Set(100, 200)
	if b.Tokens() != 100 {
		t.Fatalf("a lower limit keeps %.0f, want one second's worth", b.Tokens())
	}
	if got := b.Wait(50); got != 500*time.Millisecond {
		t.Fatalf("wait %v to pay 50 at 100/s", got)
	}
	var free Bucket
	free.Take(1 << 40)
	if free.Blocked() || !free.Allow(t0, 1e9) || free.Limited() {
		t.Fatal("an unlimited bucket limits")
	}
}

func TestBucketAllow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(10, 5)
	b.Refill(t0)
	n := 0
	for b.Allow(t0, 1) {
		n++
	}
	if n != 5 {
		t.Fatalf("burst allowed %d, want 5", n)
	}
	if !b.Allow(t0.Add(100*time.Millisecond), 1) || b.Allow(t0.Add(100*time.Millisecond), 1) {
		t.Fatal("one token per 100 ms at 10/s")
	}
}
