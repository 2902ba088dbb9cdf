package tracker

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Every error this package returns wraps one of them (or a
// context error), so callers can classify failures with errors.Is.
var (
	// ErrTrackerFailure: the tracker answered with a failure reason (HTTP
	// "failure reason" or UDP error action). Returned as *TrackerError.
	ErrTrackerFailure = errors.New("tracker: tracker reported failure")
	// ErrBadResponse: the reply could not be understood (bad bencode, wrong
	// types, truncated packet, peer list of the wrong length, HTTP status).
	ErrBadResponse = errors.New("tracker: malformed response")
	// ErrTooLarge: the reply exceeded the configured size bound.
	ErrTooLarge = errors.New("tracker: response too large")
	// ErrBadURL: the announce URL cannot be parsed or lacks a host/port.
	ErrBadURL = errors.New("tracker: invalid announce URL")
	// ErrUnsupportedScheme: neither http, https nor udp (e.g. wss).
	ErrUnsupportedScheme = errors.New("tracker: unsupported URL scheme")
	// ErrTimeout: a UDP tracker did not answer within the retransmission
	// budget, or an HTTP tracker did not answer within the request timeout.
	ErrTimeout = errors.New("tracker: timed out")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("tracker: client closed")
	// ErrResolve: the tracker host name did not resolve to a usable address.
	ErrResolve = errors.New("tracker: cannot resolve host")
)

// maxReasonLen bounds the failure and warning text we keep: it ends up in
// API responses and logs, and a hostile tracker must not fill them.
const maxReasonLen = 1024

// TrackerError is a failure reported by the tracker itself. Unlike network
// errors it is a deliberate answer (unregistered torrent, bad passkey), so
// the caller may want to show Reason to the user verbatim.
type TrackerError struct {
	Reason string
}

func (e *TrackerError) Error() string { return "tracker: failure: " + e.Reason }

// Unwrap lets errors.Is(err, ErrTrackerFailure) match.
func (e *TrackerError) Unwrap() error { return ErrTrackerFailure }

// cleanText turns tracker-supplied bytes into a bounded, printable string.
// It copies, so the result never aliases a decoder buffer.
func cleanText(b []byte) string {
	if len(b) > maxReasonLen {
		b = b[:maxReasonLen]
	}
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	// opentracker and others NUL-terminate their UDP error text.
	return strings.TrimRight(s, " ")
}
