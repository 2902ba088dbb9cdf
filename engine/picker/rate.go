package picker

import "time"

// DefaultRateWindow is the averaging window of a zero Rate.
const DefaultRateWindow = 5 * time.Second

// Rate measures bytes per second over a sliding window of whole seconds,
// kept as a ring of one-second buckets, so adding and reading are O(window)
// at worst and allocate only once. Time comes from the caller. The zero
// value is ready to use with DefaultRateWindow. A Rate is plain data: the
// goroutine that owns it (normally the session) must be the only caller.
type Rate struct {
	window  int64   // seconds
	buckets []int64 // bytes per unix second, indexed by second mod window
	sec     int64   // unix second of the newest bucket
	start   time.Time
	last    int64 // unix ns of the latest Add (not a time.Time: a Rate lives in every peer)
	total   int64
}

// NewRate returns a Rate averaging over window, rounded up to whole
// seconds (at least one). Any goroutine may call it; the result belongs to
// its owner.
func NewRate(window time.Duration) *Rate {
	return &Rate{window: max(1, int64((window+time.Second-1)/time.Second))}
}

func (r *Rate) init(now time.Time) {
	if r.window == 0 {
		r.window = int64(DefaultRateWindow / time.Second)
	}
	r.buckets = make([]int64, r.window)
	r.sec = now.Unix()
	r.start = now
}

func (r *Rate) slot(sec int64) int { return int(((sec % r.window) + r.window) % r.window) }

// advance zeroes the buckets of seconds that passed since the newest one.
// A clock that went backwards keeps adding to the newest bucket.
func (r *Rate) advance(now time.Time) {
	s := now.Unix()
	if s <= r.sec {
		return
	}
	if s-r.sec >= r.window {
		clear(r.buckets)
	} else {
		for k := r.sec + 1; k <= s; k++ {
			r.buckets[r.slot(k)] = 0
		}
	}
	r.sec = s
}

// Add counts n bytes transferred at now. Owner goroutine only.
func (r *Rate) Add(now time.Time, n int64) {
	if r.buckets == nil {
		r.init(now)
	}
	r.advance(now)
	r.buckets[r.slot(r.sec)] += n
	r.total += n
	r.last = now.UnixNano()
}

// Shown is Rate as a user should read it: 0 once nothing was added for
// idle. The window average alone would take its whole length to fall to
// zero after a transfer stops, showing traffic that is no longer there.
// Owner goroutine only.
func (r *Rate) Shown(now time.Time, idle time.Duration) int64 {
	if r.buckets == nil || now.UnixNano()-r.last >= int64(idle) {
		return 0
	}
	return r.Rate(now)
}

// Rate is the average bytes per second over the window ending at now. The
// window is the current partial second plus the whole seconds before it;
// while the Rate is younger than that, the time since the first Add is used
// instead, but never less than one second, so a burst in the first few
// milliseconds reads as "that many bytes this second" rather than a huge
// spike. Owner goroutine only.
func (r *Rate) Rate(now time.Time) int64 {
	if r.buckets == nil {
		return 0
	}
	r.advance(now)
	var sum int64
	for _, b := range r.buckets {
		sum += b
	}
	span := time.Duration(r.window-1)*time.Second + time.Duration(now.Nanosecond())
	span = min(span, now.Sub(r.start))
	span = max(span, time.Second)
	return int64(float64(sum) / span.Seconds())
}

// Total is every byte ever added. Owner goroutine only.
func (r *Rate) Total() int64 { return r.total }
