package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine/ratelimit"
)

// DefaultAPIRate is Config.APIRate when it is zero: about six /alldata
// answers a second at 10,000 torrents, far more than a dashboard polls.
const DefaultAPIRate = 32 << 20

const (
	// requestCost is what one answer costs on top of its body, in bytes.
	// Measured in bench scenario e, 540 small requests a second beside a
	// 1 GB/s transfer cost it about 6 %, some 110 KB of transfer each (both
	// ends of the connection and their wake-ups), while a 5 MB body costs
	// less than 5 MB of transfer. At 256 KiB a flood of tiny requests gets
	// 128 answers a second from the default budget.
	requestCost = 256 << 10
	// busyRate is the payload rate from which peers count as transferring.
	busyRate = 1 << 20
	// maxPaceWait bounds how long an answer waits for its turn; past it the
	// client gets 503 with Retry-After instead.
	maxPaceWait = 10 * time.Second
	// refusedHold is how long a 503 is held back, so a client that retries
	// at once cannot turn refusals into a busy loop.
	refusedHold = time.Second
)

// pacer gives transfers priority over the API. While peers move data, the
// bytes the API sends (and a fixed cost per request) come out of a token
// bucket of Config.APIRate per second, one second of burst: a hammering
// client then waits for its answers instead of taking CPU from the event
// loops and disk workers. With peers idle the API runs unpaced. Safe for
// concurrent use.
type pacer struct {
	rate int64 // bytes per second; <= 0 means no pacing
	busy func() bool
	now  func() time.Time
	stop <-chan struct{}

	mu     sync.Mutex
	bucket ratelimit.Bucket // rate a second, one second of burst, starts full
}

func newPacer(rate int64, busy func() bool, now func() time.Time, stop <-chan struct{}) *pacer {
	return &pacer{rate: rate, busy: busy, now: now, stop: stop, bucket: ratelimit.New(float64(rate), float64(rate))}
}

// reserve takes cost from the bucket and says how long the caller must wait
// before sending; ok is false (and nothing is taken) when that would exceed
// maxPaceWait.
func (p *pacer) reserve(cost int64) (wait time.Duration, ok bool) {
	if p.rate <= 0 {
		return 0, true
	}
	now := p.now()
	busy := p.busy()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bucket.Refill(now)
	if !busy {
		return 0, true
	}
	wait = p.bucket.Wait(float64(cost) - p.bucket.Tokens())
	if wait > maxPaceWait {
		return 0, false
	}
	p.bucket.Take(float64(cost))
	return wait, true
}

// sleep waits d or until the server stops.
func (p *pacer) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}

// pace holds the answer already in ctx until the budget allows it, or
// replaces it with a 503 when the queue is too long.
func (s *Server) pace(ctx *fasthttp.RequestCtx) {
	wait, ok := s.pacer.reserve(requestCost + int64(len(ctx.Response.Body())))
	if ok {
		s.pacer.sleep(wait)
		return
	}
	ctx.Response.Reset()
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(int(maxPaceWait/time.Second)))
	writeError(ctx, http.StatusServiceUnavailable, "API busy: peers are transferring and requests are queued beyond 10 s; retry later")
	s.pacer.sleep(refusedHold)
}
