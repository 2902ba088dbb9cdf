package picker

import (
	"testing"
	"time"
)

func within(got, want, tolPercent int64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d*100 <= want*tolPercent
}

func TestRateSteadyStream(t *testing.T) {
	var r Rate // zero value: 5 s window
	now := t0.Add(300 * time.Millisecond)
	// 1000 bytes every 100 ms = 10,000 B/s for 12 s.
	for range 120 {
		r.Add(now, 1000)
		now = now.Add(100 * time.Millisecond)
	}
	if got := r.Rate(now); !within(got, 10000, 5) {
		t.Fatalf("steady rate %d, want about 10000", got)
	}
	if r.Total() != 120000 {
		t.Fatalf("total %d", r.Total())
	}
	// The window forgets: after 3 s of silence the average drops, after
	// more than the window it is zero.
	if got := r.Rate(now.Add(3 * time.Second)); got >= 10000*3/5 || got == 0 {
		t.Fatalf("rate 3 s into silence %d", got)
	}
	if got := r.Rate(now.Add(6 * time.Second)); got != 0 {
		t.Fatalf("rate after the window %d, want 0", got)
	}
}

func TestRateYoungAndWindowed(t *testing.T) {
	r := NewRate(2 * time.Second)
	if r.Rate(t0) != 0 {
		t.Fatal("empty rate not zero")
	}
	// A burst in the first half second reads as bytes per (one) second.
	r.Add(t0, 5000)
	if got := r.Rate(t0.Add(500 * time.Millisecond)); got != 5000 {
		t.Fatalf("young rate %d, want 5000", got)
	}
	// 3 s of 8000 B/s, then 2 s at 2000 B/s: a 2 s window sees only the latter.
	now := t0.Add(time.Second)
	for range 30 {
		r.Add(now, 800)
		now = now.Add(100 * time.Millisecond)
	}
	for range 20 {
		r.Add(now, 200)
		now = now.Add(100 * time.Millisecond)
	}
	if got := r.Rate(now); !within(got, 2000, 10) {
		t.Fatalf("windowed rate %d, want about 2000", got)
	}
	// A clock that steps back must not panic or lose bytes.
	r.Add(now.Add(-10*time.Second), 100)
	if r.Total() != 5000+30*800+20*200+100 {
		t.Fatalf("total %d", r.Total())
	}
}

// A shown rate reads zero once nothing moved for the idle time, though the
// window still holds bytes.
func TestRateShownDropsToZero(t *testing.T) {
	var r Rate
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r.Add(t1.Add(time.Duration(i)*time.Second), 1000)
	}
	end := t1.Add(4 * time.Second)
	if got := r.Shown(end.Add(500*time.Millisecond), time.Second); got == 0 {
		t.Fatal("shown rate zero while bytes moved half a second ago")
	}
	if r.Rate(end.Add(1500*time.Millisecond)) == 0 {
		t.Fatal("window average already zero: the test proves nothing")
	}
	if got := r.Shown(end.Add(1500*time.Millisecond), time.Second); got != 0 {
		t.Fatalf("shown rate %d 1.5 s after the last byte, want 0", got)
	}
	var empty Rate
	if empty.Shown(end, time.Second) != 0 {
		t.Fatal("empty rate not zero")
	}
}
