package main

import (
	"testing"
	"time"
)

func TestGCPolicyFollowsLoad(t *testing.T) {
	g := newGCPolicy()
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at      time.Duration
		payload int64
		want    int
		changed bool
	}{
		{0, 0, idleGCPercent, false},
		{1 * time.Second, gcBusyRate - 1, idleGCPercent, false},
		{2 * time.Second, gcBusyRate, busyGCPercent, true},
		{3 * time.Second, 0, busyGCPercent, false}, // a pause is not calm yet
		{5 * time.Second, 2 * gcBusyRate, busyGCPercent, false},
		{14 * time.Second, 0, busyGCPercent, false},
		{15 * time.Second, 0, idleGCPercent, true},
		{16 * time.Second, 0, idleGCPercent, false},
	}
	for _, s := range steps {
		got, changed := g.step(t0.Add(s.at), s.payload)
		if got != s.want || changed != s.changed {
			t.Fatalf("at %v with %d B/s: got %d (changed %v), want %d (changed %v)",
				s.at, s.payload, got, changed, s.want, s.changed)
		}
	}
}
