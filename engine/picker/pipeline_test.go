package picker

import (
	"testing"
	"time"
)

func TestPipelineSlowStartDoublesPerRoundTrip(t *testing.T) {
	p := NewPipeline()
	if p.Depth() != MinDepth || !p.SlowStart() {
		t.Fatalf("fresh depth %d slow=%v", p.Depth(), p.SlowStart())
	}
	// One round trip delivers the whole window; each round should double it.
	rounds := 0
	for p.SlowStart() {
		before := p.Depth()
		for range before {
			p.BlockReceived()
		}
		rounds++
		if p.SlowStart() && p.Depth() != 2*before {
			t.Fatalf("round %d: depth %d -> %d, want doubling", rounds, before, p.Depth())
		}
		if rounds > 20 {
			t.Fatal("slow start never ended")
		}
	}
	if p.Depth() != DefaultPeerMax {
		t.Fatalf("slow start ended at %d, want the peer max %d", p.Depth(), DefaultPeerMax)
	}
	// 4 -> 250 takes 6 round trips: on loopback, well under a millisecond.
	if rounds != 6 {
		t.Fatalf("took %d rounds", rounds)
	}
}

func TestPipelineFollowsRate(t *testing.T) {
	p := NewPipeline()
	p.SetPeerMax(10000) // clamped to our own cap
	if p.Max() != CapDepth {
		t.Fatalf("max %d, want cap %d", p.Max(), CapDepth)
	}
	now := t0
	p.Update(now, 0)
	for range 20 {
		p.BlockReceived()
	}
	// Rate grows from 0 to 400 KB/s: still slow start, and the depth jumps
	// to what that rate needs since that is more than slow start reached.
	now = now.Add(time.Second)
	grown := max(MinDepth+20, int(400_000*DefaultQueueTime.Seconds()/BlockSize))
	if d := p.Update(now, 400_000); !p.SlowStart() || d != grown {
		t.Fatalf("depth %d slow=%v after growth", d, p.SlowStart())
	}
	// Updates less than a second apart change nothing.
	if d := p.Update(now.Add(500*time.Millisecond), 1); d != grown {
		t.Fatalf("early update changed depth to %d", d)
	}
	// Rate flat: slow start ends, depth = rate * 2 s / 16 KiB.
	now = now.Add(time.Second)
	want := int(410_000 * DefaultQueueTime.Seconds() / BlockSize)
	if d := p.Update(now, 410_000); p.SlowStart() || d != want {
		t.Fatalf("depth %d slow=%v, want %d after plateau", d, p.SlowStart(), want)
	}
	// Very slow peer: floor at MinDepth. Very fast: ceiling at the peer's reqq.
	now = now.Add(time.Second)
	if d := p.Update(now, 100); d != MinDepth {
		t.Fatalf("slow peer depth %d", d)
	}
	p.SetPeerMax(64)
	now = now.Add(time.Second)
	if d := p.Update(now, 1<<30); d != 64 {
		t.Fatalf("fast peer depth %d, want its reqq 64", d)
	}
	// Silence (e.g. choked) restarts slow start from the bottom.
	now = now.Add(time.Second)
	if d := p.Update(now, 0); d != MinDepth || !p.SlowStart() {
		t.Fatalf("after silence depth %d slow=%v", d, p.SlowStart())
	}
	p.SetPeerMax(2)
	if p.Depth() != 2 {
		t.Fatalf("depth %d above a reqq of 2", p.Depth())
	}
}

// A far peer needs its round trip's worth of requests on top of the queue
// time: at 2 MiB/s and 600 ms the depth covers 2.6 s of data.
func TestPipelineCoversRoundTrip(t *testing.T) {
	p := NewPipeline()
	p.SetPeerMax(CapDepth)
	t0 := time.Unix(1_700_000_000, 0)
	p.ObserveRTT(900 * time.Millisecond)
	p.ObserveRTT(600 * time.Millisecond)
	p.ObserveRTT(0) // no sample
	p.ObserveRTT(700 * time.Millisecond)
	if p.RTT() != 600*time.Millisecond {
		t.Fatalf("rtt %v, want the shortest sample 600ms", p.RTT())
	}
	p.Update(t0, 2<<20)
	// Flat rate: slow start ends at the rate's depth.
	d := p.Update(t0.Add(time.Second), 2<<20)
	want := int(float64(2<<20) * (DefaultQueueTime + 600*time.Millisecond).Seconds() / BlockSize)
	if p.SlowStart() || d != want {
		t.Fatalf("depth %d slow=%v, want %d", d, p.SlowStart(), want)
	}
}
