package webseed

import (
	"time"
)

// Status is where a server stands.
type Status int

// Statuses, as the API names them.
const (
	Working Status = iota // asked for data
	Backoff               // failed lately; asked again at Health.RetryAt
	Dropped               // not asked again this run
)

func (s Status) String() string {
	return [...]string{"working", "backoff", "dropped"}[s]
}

const (
	// FirstBackoff is the wait after a first failure; each failure in a
	// row doubles it, so a server that is down for a few minutes costs a
	// handful of requests, not one a second.
	FirstBackoff = 30 * time.Second
	// MaxFailures in a row drop the server: with the doubling it has then
	// been failing for about eight minutes.
	MaxFailures = 5
	// MaxRetryAfter bounds a server's Retry-After, so a server cannot park
	// itself for a year and still be shown as backing off.
	MaxRetryAfter = time.Hour
)

// Health is one server's failure policy: errors back it off, exponentially,
// and MaxFailures in a row, or one permanent error, drop it. Plain data
// owned by one session.
type Health struct {
	Status    Status
	Failures  int       // consecutive failures
	RetryAt   time.Time // while Backoff
	LastError string
	// Epoch changes at every backoff and drop. Requests sent before carry
	// the old one: their failures are the same outage and are not counted
	// again, or three requests in flight would use up three of the
	// server's chances at once.
	Epoch uint32
}

// Succeeded records a request answered in full.
func (h *Health) Succeeded() {
	if h.Status == Working {
		h.Failures = 0
	}
}

// Failed records a failed request at now. retryAfter is the server's own
// Retry-After, or 0.
func (h *Health) Failed(now time.Time, err error, retryAfter time.Duration) {
	if h.Status == Dropped {
		return
	}
	h.LastError = err.Error()
	h.Failures++
	if Permanent(err) || h.Failures >= MaxFailures {
		h.drop()
		return
	}
	wait := FirstBackoff << (h.Failures - 1)
	wait = max(wait, min(retryAfter, MaxRetryAfter))
	h.Status, h.RetryAt = Backoff, now.Add(wait)
	h.Epoch++
}

// Drop stops using the server for the rest of the run, saying why.
func (h *Health) Drop(why string) {
	h.LastError = why
	h.drop()
}

func (h *Health) drop() {
	h.Status, h.RetryAt = Dropped, time.Time{}
	h.Epoch++
}

// Ready reports whether the server may be asked at now; a backoff that has
// run out makes it Working again (its failures still count until a
// request succeeds).
func (h *Health) Ready(now time.Time) bool {
	switch h.Status {
	case Working:
		return true
	case Backoff:
		if now.Before(h.RetryAt) {
			return false
		}
		h.Status, h.RetryAt = Working, time.Time{}
		return true
	}
	return false
}

// Reset gives the server a fresh start for a new run (a start or a
// recheck), keeping its last error for the record.
func (h *Health) Reset() {
	h.Status, h.Failures, h.RetryAt = Working, 0, time.Time{}
	h.Epoch++
}
