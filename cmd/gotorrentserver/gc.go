package main

import (
	"os"
	"runtime/debug"
	"time"
)

// The daemon's heap is mostly long-lived peer and session state: its hot
// paths recycle their buffers. Go's default GOGC=100 lets RSS run to twice
// that in garbage, which is what an idle seedbox with 10,000 connections
// pays for (4.2 KiB per idle connection in bench scenario d, 2.5 at 25).
// While peers transfer, though, a low target means a GC cycle every few
// MB allocated, each marking the whole heap: at 25, a 2 GB/s seed beside
// 10,000 loaded torrents lost 4-8 % of its rate to GC (scenario e), at 100
// 0.5-3 %. So serve follows the load, unless GOGC is set.
const (
	idleGCPercent = 25
	busyGCPercent = 100
	// gcBusyRate is the payload rate (bytes/s, both directions) from which
	// the daemon counts as busy.
	gcBusyRate = 8 << 20
	// gcCalm is how long the rate must stay under gcBusyRate before the
	// target drops back, so a transfer that pauses does not flap it.
	gcCalm = 10 * time.Second
)

// gcPolicy is the choice of GC target as plain data: fed the payload rate
// once a second, it says which target applies.
type gcPolicy struct {
	percent  int
	busySeen time.Time
}

func newGCPolicy() *gcPolicy { return &gcPolicy{percent: idleGCPercent} }

// step returns the target for now and whether it changed.
func (g *gcPolicy) step(now time.Time, payload int64) (percent int, changed bool) {
	want := g.percent
	switch {
	case payload >= gcBusyRate:
		g.busySeen = now
		want = busyGCPercent
	case now.Sub(g.busySeen) >= gcCalm:
		want = idleGCPercent
	}
	changed = want != g.percent
	g.percent = want
	return want, changed
}

// adaptGC applies the policy every second until stop is closed. rates is
// the engine's payload meter. It does nothing when GOGC is set.
func adaptGC(stop <-chan struct{}, rates func() (down, up int64)) {
	if os.Getenv("GOGC") != "" {
		return
	}
	g := newGCPolicy()
	debug.SetGCPercent(g.percent)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				d, u := rates()
				if p, changed := g.step(now, d+u); changed {
					debug.SetGCPercent(p)
				}
			}
		}
	}()
}
