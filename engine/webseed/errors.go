package webseed

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Every error a Fetch returns wraps one of them or a
// context error, so the engine classifies failures with errors.Is.
var (
	// ErrBadURL: the url-list entry is not an absolute http or https URL.
	ErrBadURL = errors.New("webseed: bad URL")
	// ErrStatus: the server answered with an error status (*StatusError).
	ErrStatus = errors.New("webseed: error status")
	// ErrNoRanges: the server answered a range past a file's start with the
	// whole file (200): it cannot serve any piece but the first of a file
	// without sending everything before it.
	ErrNoRanges = errors.New("webseed: server ignores range requests")
	// ErrBadAnswer: the answer is not the range asked for (Content-Range,
	// length or file size differ, or it is compressed).
	ErrBadAnswer = errors.New("webseed: answer does not match the request")
	// ErrShort: the body ended before the range did.
	ErrShort = errors.New("webseed: answer ended early")
	// ErrStalled: no byte arrived for the stall timeout.
	ErrStalled = errors.New("webseed: server stalled")
)

// StatusError is an HTTP error status. RetryAfter is the server's
// Retry-After (429, 503), 0 when it gave none.
type StatusError struct {
	Code       int
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webseed: HTTP %d %s", e.Code, http.StatusText(e.Code))
}

func (e *StatusError) Unwrap() error { return ErrStatus }

// Permanent reports whether err will not go away by asking again: the
// server is then dropped at once instead of backed off.
func Permanent(err error) bool {
	return errors.Is(err, ErrBadURL) || errors.Is(err, ErrNoRanges)
}

// RetryAfter is the wait the server asked for with err, or 0.
func RetryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
