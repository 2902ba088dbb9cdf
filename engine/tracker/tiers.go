package tracker

import (
	"math/rand/v2"
	"time"
)

// Tracker status strings shown by the API.
const (
	StatusPending = "pending" // never answered yet
	StatusWorking = "working" // last announce succeeded
	StatusError   = "error"   // last announce failed
)

// Scheduling bounds. A tracker's interval is honoured within
// [minAnnounceInterval, maxAnnounceInterval] so that neither a typo on the
// tracker (interval 0) nor a hostile one (interval 10 years) can make us
// hammer it or go silent for good.
const (
	defaultInterval     = 30 * time.Minute
	minAnnounceInterval = time.Minute
	maxAnnounceInterval = 24 * time.Hour
	// defaultMinInterval spaces WantPeers re-announces when the tracker
	// gave no "min interval".
	defaultMinInterval = 2 * time.Minute
	retryBase          = 30 * time.Second
	retryMax           = 30 * time.Minute
)

// TrackerStatus is a snapshot of one tracker for the API.
type TrackerStatus struct {
	URL          string
	Tier         int
	Status       string // StatusPending, StatusWorking or StatusError
	Seeders      int    // -1 unknown
	Leechers     int    // -1 unknown
	Peers        int    // peers in the last successful reply
	LastAnnounce time.Time
	LastError    string
	// NextAnnounce is set on the tracker Next will return, zero on others:
	// BEP 12 contacts one tracker per round.
	NextAnnounce time.Time
	Interval     time.Duration // effective interval from the last success
}

type trackerEntry struct {
	status    TrackerStatus
	trackerID string
}

// Tiers is the BEP 12 announce-list state and announce schedule of one
// torrent. It does no I/O and reads no clock: the session loop that owns it
// passes now in. Not safe for concurrent use: every method is called from
// the goroutine that owns the torrent session.
//
// Round: Next names a tracker, the caller marks it with Announcing and
// reports Success or Failure. A failure moves on to the next tracker at
// once (within the tier, then the next tier); when every tracker has
// failed, the round starts over after a backoff doubling from 30 s to
// 30 min. A success moves the tracker to the front of its tier and the next
// round, due after its interval, starts again from the first tier.
type Tiers struct {
	tiers     [][]*trackerEntry
	byURL     map[string]*trackerEntry
	tier, pos int // cursor: the tracker Next returns

	next        time.Time // zero: due now
	inFlight    string
	failures    int // consecutive rounds in which every tracker failed
	lastSuccess time.Time
	minInterval time.Duration
	working     *trackerEntry
}

// NewTiers builds the state from a metainfo announce list, dropping empty
// and duplicate URLs and empty tiers. Each tier is shuffled once with r, as
// BEP 12 asks; r nil uses the global source. The first announce is due
// immediately.
func NewTiers(list [][]string, r *rand.Rand) *Tiers {
	shuffle := rand.Shuffle
	if r != nil {
		shuffle = r.Shuffle
	}
	t := &Tiers{byURL: make(map[string]*trackerEntry)}
	for _, urls := range list {
		var tier []*trackerEntry
		for _, u := range urls {
			if u == "" || t.byURL[u] != nil {
				continue
			}
			e := &trackerEntry{status: TrackerStatus{URL: u, Status: StatusPending, Seeders: -1, Leechers: -1}}
			t.byURL[u] = e
			tier = append(tier, e)
		}
		if len(tier) == 0 {
			continue
		}
		shuffle(len(tier), func(i, j int) { tier[i], tier[j] = tier[j], tier[i] })
		t.tiers = append(t.tiers, tier)
	}
	return t
}

// Len is the number of distinct trackers.
func (t *Tiers) Len() int { return len(t.byURL) }

// Next returns the tracker to contact in this round; false when there are
// no trackers.
func (t *Tiers) Next() (string, bool) {
	if len(t.tiers) == 0 {
		return "", false
	}
	return t.tiers[t.tier][t.pos].status.URL, true
}

// Due reports whether an announce should start now: the scheduled time has
// come and none is in flight.
func (t *Tiers) Due(now time.Time) bool {
	return len(t.tiers) > 0 && t.inFlight == "" && !now.Before(t.next)
}

// NextAnnounceAt is when the next round is due (zero: as soon as possible),
// for the session to arm its timer.
func (t *Tiers) NextAnnounceAt() time.Time { return t.next }

// Announcing records that an announce to url has been handed to the Client,
// so Due stays false until its Success or Failure arrives.
func (t *Tiers) Announcing(url string) {
	if t.byURL[url] != nil {
		t.inFlight = url
	}
}

// AnnounceNow makes the next round due immediately, ignoring the interval
// and min interval: for events (started, completed, stopped) that the
// tracker must hear about.
func (t *Tiers) AnnounceNow() { t.next = time.Time{} }

// WantPeers brings the next round forward because the session is short of
// peers, but no earlier than the tracker's min interval after the last
// success, and never during an error backoff.
func (t *Tiers) WantPeers(now time.Time) {
	if t.failures > 0 || t.lastSuccess.IsZero() {
		return
	}
	earliest := t.lastSuccess.Add(t.minInterval)
	if earliest.Before(now) {
		earliest = now
	}
	if earliest.Before(t.next) {
		t.next = earliest
	}
}

// Success records resp from url, moves url to the front of its tier and
// schedules the next round after the tracker's interval. Unknown URLs are
// ignored.
func (t *Tiers) Success(url string, resp AnnounceResponse, now time.Time) {
	e := t.byURL[url]
	if e == nil {
		return
	}
	if t.inFlight == url {
		t.inFlight = ""
	}
	interval := resp.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	interval = min(max(interval, resp.MinInterval, minAnnounceInterval), maxAnnounceInterval)
	t.minInterval = min(max(resp.MinInterval, defaultMinInterval), interval)
	s := &e.status
	s.Status, s.LastError, s.LastAnnounce, s.Interval = StatusWorking, "", now, interval
	s.Seeders, s.Leechers, s.Peers = resp.Seeders, resp.Leechers, len(resp.Peers)
	if resp.TrackerID != "" {
		e.trackerID = resp.TrackerID
	}
	ti, pi := t.find(e)
	tier := t.tiers[ti]
	copy(tier[1:pi+1], tier[:pi])
	tier[0] = e
	t.tier, t.pos = 0, 0
	t.failures = 0
	t.lastSuccess = now
	t.working = e
	t.next = now.Add(interval)
}

// Failure records that url failed with err. If url is the current tracker
// the round moves to the next one, due at once; after the last tracker the
// round restarts from the first after a backoff. Unknown URLs are ignored.
func (t *Tiers) Failure(url string, err error, now time.Time) {
	e := t.byURL[url]
	if e == nil {
		return
	}
	if t.inFlight == url {
		t.inFlight = ""
	}
	s := &e.status
	s.Status, s.LastAnnounce = StatusError, now
	s.LastError = "unknown error"
	if err != nil {
		s.LastError = err.Error()
	}
	if t.working == e {
		t.working = nil
	}
	if cur, _ := t.Next(); cur != url {
		return
	}
	t.pos++
	if t.pos < len(t.tiers[t.tier]) {
		t.next = now
		return
	}
	t.tier, t.pos = t.tier+1, 0
	if t.tier < len(t.tiers) {
		t.next = now
		return
	}
	t.tier = 0
	t.failures++
	t.next = now.Add(Backoff(t.failures))
}

// Backoff is the wait before retrying after n consecutive failed rounds:
// 30 s doubling up to 30 min.
func Backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return min(retryBase<<min(n-1, 16), retryMax)
}

// Working returns the tracker that answered most recently and has not
// failed since, e.g. to send it the stopped event.
func (t *Tiers) Working() (string, bool) {
	if t.working == nil {
		return "", false
	}
	return t.working.status.URL, true
}

// TrackerID is the "tracker id" url last gave, to echo in AnnounceRequest.
func (t *Tiers) TrackerID(url string) string {
	if e := t.byURL[url]; e != nil {
		return e.trackerID
	}
	return ""
}

// Statuses returns copies of every tracker's status in tier order.
func (t *Tiers) Statuses() []TrackerStatus {
	out := make([]TrackerStatus, 0, len(t.byURL))
	for ti, tier := range t.tiers {
		for pi, e := range tier {
			s := e.status
			s.Tier = ti
			if ti == t.tier && pi == t.pos {
				s.NextAnnounce = t.next
			}
			out = append(out, s)
		}
	}
	return out
}

func (t *Tiers) find(e *trackerEntry) (int, int) {
	for ti, tier := range t.tiers {
		for pi, x := range tier {
			if x == e {
				return ti, pi
			}
		}
	}
	return -1, -1 // unreachable: e came from byURL
}
