package webseed

import (
	"fmt"
	"strings"
)

// ParseContentRange reads the Content-Range of a 206 answer,
// "bytes FIRST-LAST/TOTAL" (RFC 9110 14.4), where TOTAL may be "*"
// (unknown: total is -1 then). The unit is case-insensitive; everything
// else is strict: digits only, no signs, no values past int64, FIRST <= LAST
// < TOTAL. The unsatisfied form "bytes */TOTAL" belongs to a 416 and is an
// error here. The header comes from an untrusted server.
func ParseContentRange(s string) (first, last, total int64, err error) {
	bad := func(why string) (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("%w: Content-Range %q: %s", ErrBadAnswer, clip(s), why)
	}
	unit, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return bad("not a bytes range")
	}
	rest = strings.TrimLeft(rest, " ")
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no length")
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return bad("no range")
	}
	if first, ok = digits(a); !ok {
		return bad("bad first byte")
	}
	if last, ok = digits(b); !ok {
		return bad("bad last byte")
	}
	if first > last {
		return bad("first byte after last")
	}
	if size == "*" {
		return first, last, -1, nil
	}
	if total, ok = digits(size); !ok {
		return bad("bad length")
	}
	if last >= total {
		return bad("range past the length")
	}
	return first, last, total, nil
}

// digits parses a non-empty run of ASCII digits that fits an int64.
func digits(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n < 0 {
			return 0, false
		}
	}
	return n, true
}

// clip keeps a server's header short in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
