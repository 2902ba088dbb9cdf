package engine

import (
	"testing"
	"time"
)

// The busy signal counts bytes whether or not a limit is set, and a limit
// still refills to at most one second's worth.
func TestGlobalBucketMeasuresAndLimits(t *testing.T) {
	var b globalBucket
	t0 := time.Unix(1000, 0)
	b.refill(t0, true)
	b.take(3 << 20)
	b.refill(t0.Add(2*time.Second), true)
	if got := b.perSecond.Load(); got != 3<<19 {
		t.Fatalf("unlimited: %d B/s measured, want %d", got, 3<<19)
	}
	b.refill(t0.Add(3*time.Second), true)
	if got := b.perSecond.Load(); got != 0 {
		t.Fatalf("idle second: %d B/s measured, want 0", got)
	}

	b.set(1 << 20)
	b.take(1 << 20)
	if !b.blocked() {
		t.Fatal("a limited bucket drained by a second's worth is not blocked")
	}
	b.refill(t0.Add(13*time.Second), true)
	if got, _ := b.tokens(); got != 1<<20 {
		t.Fatalf("after ten idle seconds the bucket holds %d, want one second's %d", got, 1<<20)
	}
	if got := b.perSecond.Load(); got != (1<<20)/10 {
		t.Fatalf("limited: %d B/s measured, want %d", got, (1<<20)/10)
	}
}
