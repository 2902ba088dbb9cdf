package picker

import "time"

// Pipeline limits.
const (
	// MinDepth is the fewest requests kept outstanding to a peer that
	// unchokes us: enough to hide one round trip on a slow link.
	MinDepth = 4
	// DefaultPeerMax is the reqq assumed when a peer's extension handshake
	// gives none (libtorrent's default max_out_request_queue is 250 too).
	DefaultPeerMax = 250
	// CapDepth is our own ceiling, whatever reqq a peer advertises.
	CapDepth = 500
	// DefaultQueueTime is how many seconds of data at the measured rate
	// we keep requested, so the peer never idles waiting for our next
	// request even if our event loop stalls briefly.
	DefaultQueueTime = 2 * time.Second
)

// Pipeline chooses how many requests to keep outstanding to one peer.
//
// It starts in slow start at MinDepth and grows by one for every block
// received, which doubles the depth each round trip, like TCP's congestion
// window: a fast peer on a short path reaches its limit within a few round
// trips, long before a rate average could say it is fast. Once a second
// Update compares the measured rate with the previous second's; when it
// stopped growing by a quarter (or the depth hit its limit) slow start
// ends and the depth follows rate * (QueueTime + RTT) / BlockSize, clamped
// to [MinDepth, Max()]: what the peer can send while our next request is
// on its way, plus QueueTime of margin. RTT is the shortest request-to-block
// time seen (ObserveRTT); on a satellite link it is most of a second. A
// rate of zero (the peer went silent, e.g. choked us) restarts slow start
// from MinDepth.
//
// Plain data; the session owns it and is its only caller.
type Pipeline struct {
	// QueueTime is the target queue length in time (default 2 s).
	QueueTime time.Duration

	peerMax   int
	depth     int
	slow      bool
	lastCheck time.Time
	lastRate  int64
	rtt       time.Duration // shortest request-to-block time seen; 0 = none yet
}

// NewPipeline returns a pipeline in slow start with the default peer
// limit. Any goroutine may call it; the result belongs to its owner.
func NewPipeline() *Pipeline {
	return &Pipeline{QueueTime: DefaultQueueTime, peerMax: DefaultPeerMax, depth: MinDepth, slow: true}
}

// SetPeerMax applies the reqq from the peer's extension handshake; zero or
// negative means the peer gave none. Owner goroutine only.
func (p *Pipeline) SetPeerMax(reqq int) {
	if reqq <= 0 {
		reqq = DefaultPeerMax
	}
	p.peerMax = min(max(reqq, 1), CapDepth)
	p.depth = p.clamp(p.depth)
}

// Max is the most requests the peer may have outstanding. Owner goroutine only.
func (p *Pipeline) Max() int { return p.peerMax }

// Depth is how many requests should be outstanding now. Owner goroutine only.
func (p *Pipeline) Depth() int { return p.depth }

// SlowStart reports whether the depth is still growing per block.
// Owner goroutine only.
func (p *Pipeline) SlowStart() bool { return p.slow }

func (p *Pipeline) clamp(d int) int {
	return max(min(d, p.peerMax), min(MinDepth, p.peerMax))
}

// ObserveRTT takes the time from a request sent into an empty pipeline to
// its block: a round trip plus one block's transmission, with no queue
// ahead of it. The shortest seen is kept. Owner goroutine only.
func (p *Pipeline) ObserveRTT(d time.Duration) {
	if d > 0 && (p.rtt == 0 || d < p.rtt) {
		p.rtt = d
	}
}

// RTT is the shortest round trip seen, 0 before any. Owner goroutine only.
func (p *Pipeline) RTT() time.Duration { return p.rtt }

// BlockReceived grows the depth by one during slow start. Owner goroutine only.
func (p *Pipeline) BlockReceived() {
	if !p.slow {
		return
	}
	p.depth = p.clamp(p.depth + 1)
	if p.depth == p.peerMax {
		p.slow = false
	}
}

// Update feeds the peer's current download rate (bytes/s, e.g. from a
// Rate) and returns the new depth. Calls closer than a second apart only
// return the depth, since the rate has one-second resolution.
// Owner goroutine only.
func (p *Pipeline) Update(now time.Time, rate int64) int {
	if p.lastCheck.IsZero() {
		p.lastCheck, p.lastRate = now, rate
		return p.depth
	}
	if now.Sub(p.lastCheck) < time.Second {
		return p.depth
	}
	queueTime := p.QueueTime
	if queueTime <= 0 {
		queueTime = DefaultQueueTime
	}
	byRate := p.clamp(int(min(float64(rate)*(queueTime+p.rtt).Seconds()/BlockSize, CapDepth)))
	switch {
	case rate <= 0:
		p.slow, p.depth = true, p.clamp(MinDepth)
	case p.slow && rate*4 < p.lastRate*5:
		p.slow, p.depth = false, byRate
	case p.slow:
		p.depth = max(p.depth, byRate)
	default:
		p.depth = byRate
	}
	p.lastCheck, p.lastRate = now, rate
	return p.depth
}
