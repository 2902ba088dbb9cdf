package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"gotorrentserver/metainfo"
)

// The event feed: what happened to torrents, in order, for the API's change
// stream (GET /events). Sessions publish from their own thread where they
// compare a new snapshot with the old one (Session.record), so an event
// costs that one comparison and a slot in a ring; subscribers read the ring
// by cursor at their own pace. Publishing never blocks on, and never
// allocates for, a subscriber: a subscriber too slow for the ring loses its
// place and is told so with a reset.

// Event types.
const (
	EventAdded     = "added"     // a torrent added (not one restored at start-up)
	EventRemoved   = "removed"   // a torrent removed; Deleted says whether its data went too
	EventState     = "state"     // OldState -> State, Error set in state error
	EventProgress  = "progress"  // pieces, totals and rates; at most once a second per torrent
	EventCompleted = "completed" // a download finished: downloading, then seeding
	EventError     = "error"     // the torrent entered state error (Error)
	EventSettings  = "settings"  // a torrent's Settings changed, or (global) PublishGlobal's
	EventReset     = "reset"     // the reader missed events: read everything again
	// EventLimit: a ratio or seed-time limit stopped or removed the
	// torrent; Error says which limit, Data (a string) the action.
	EventLimit = "limit"
)

// DefaultEventHistory is Config.EventHistory when it is zero: about 16
// seconds of every one of 1,000 active torrents' progress, ample for a
// dashboard reconnecting after a blip.
const DefaultEventHistory = 16384

// progressEvery bounds a torrent's progress events; the last value is
// always delivered, at most this long after it was published. Snapshots
// come with the session's one-second ticks, whose times jitter: a tick
// progressSlack early still counts as a second later, or half the events
// would wait for the tick after.
const (
	progressEvery = time.Second
	progressSlack = 50 * time.Millisecond
)

// Event is one entry of the feed. The torrent's figures are copied in
// (small values, no snapshot kept), so the ring's memory is bounded by its
// length whatever the torrents hold.
type Event struct {
	ID       uint64 // strictly increasing, also across restarts (see newFeed)
	Type     string
	InfoHash metainfo.Hash // zero for a global event
	Time     time.Time

	// The torrent as it was at the event (not set on removed, global
	// settings and reset events).
	Name       string
	State      State
	OldState   State  // state events
	Error      string // state and error events
	NumPieces  int
	Have       int
	NumFiles   int // files the API lists (pad files left out); Settings.Priorities indexes them
	Size       int64
	Left       int64
	Downloaded int64
	Uploaded   int64
	DownRate   int64
	UpRate     int64
	Settings   *Settings // added and settings events; shared, read only

	Deleted bool // removed: its data was deleted too
	// Data is a global event's payload (PublishGlobal), or for a reset
	// why ("unknown id" or "behind").
	Data any
}

// Progress is the verified fraction, 0..1.
func (e *Event) Progress() float64 {
	if e.Size == 0 {
		return 0
	}
	return float64(e.Size-e.Left) / float64(e.Size)
}

// Reasons a subscriber is reset.
const (
	ResetUnknownID = "unknown id" // the id asked for is older than the history, or from another run
	ResetBehind    = "behind"     // the reader fell more than the history behind
)

// feed is the ring of recent events. Safe for concurrent use: mu guards
// everything but subs.
type feed struct {
	mu    sync.Mutex
	ring  []Event
	head  uint64 // the last ID given; the ring holds (max(base, head-len), head]
	base  uint64 // IDs of this run start after base
	wake  chan struct{}
	armed bool // someone waits on wake: replace it at the next publish
	subs  atomic.Int64
	now   func() time.Time
}

// newFeed numbers this run's events from the clock, in microseconds: an id
// a client kept from an earlier run of the daemon is then older than
// anything this run holds, and gets a reset rather than being taken for
// one of ours (while fewer than a million events a second were published).
func newFeed(size int, now func() time.Time) *feed {
	if size <= 0 {
		size = DefaultEventHistory
	}
	base := uint64(max(now().UnixMicro(), 0))
	return &feed{ring: make([]Event, size), head: base, base: base, wake: make(chan struct{}), now: now}
}

// publish numbers ev and appends it, overwriting the oldest.
func (f *feed) publish(ev Event) {
	f.mu.Lock()
	f.head++
	ev.ID = f.head
	f.ring[ev.ID%uint64(len(f.ring))] = ev
	if f.armed {
		close(f.wake)
		f.wake = make(chan struct{})
		f.armed = false
	}
	f.mu.Unlock()
}

// oldestLocked is the lowest id after which a reader can still be served.
func (f *feed) oldestLocked() uint64 {
	if n := uint64(len(f.ring)); f.head-f.base > n {
		return f.head - n
	}
	return f.base
}

// Subscription reads the feed from a cursor. Its methods are for one
// goroutine at a time; Close may be called once, from any.
type Subscription struct {
	f      *feed
	cursor uint64 // the last id delivered
	reset  string // a reset is due first, with this reason
	closed atomic.Bool
}

// Subscribe follows the feed after event lastID: 0 starts at the next event;
// an id the history no longer holds (or never held: another run's) is
// answered by one reset event first, after which the subscription follows
// from the newest event. Close it when done.
func (c *Client) Subscribe(lastID uint64) *Subscription {
	f := c.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	sub := &Subscription{f: f, cursor: lastID}
	switch {
	case lastID == 0:
		sub.cursor = f.head
	case lastID < f.oldestLocked() || lastID > f.head:
		sub.cursor, sub.reset = f.head, ResetUnknownID
	}
	f.subs.Add(1)
	return sub
}

// Subscribers counts open subscriptions. Safe for concurrent use.
func (c *Client) Subscribers() int { return int(c.feed.subs.Load()) }

// LastEventID is the id of the newest event. Safe for concurrent use.
func (c *Client) LastEventID() uint64 {
	c.feed.mu.Lock()
	defer c.feed.mu.Unlock()
	return c.feed.head
}

// Read appends to buf the events after the cursor, as many as fit in its
// capacity (at least one), and moves the cursor past them; nothing when
// none is waiting. A reader the ring overtook gets a reset event (its id the
// newest event's) and continues from there.
func (sub *Subscription) Read(buf []Event) []Event {
	f := sub.f
	room := max(cap(buf)-len(buf), 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if sub.reset == "" && sub.cursor < f.oldestLocked() {
		sub.reset, sub.cursor = ResetBehind, f.head
	}
	if sub.reset != "" {
		buf = append(buf, Event{ID: sub.cursor, Type: EventReset, Time: f.now(), Data: sub.reset})
		sub.reset = ""
		return buf
	}
	n := uint64(len(f.ring))
	for ; sub.cursor < f.head && room > 0; room-- {
		sub.cursor++
		buf = append(buf, f.ring[sub.cursor%n])
	}
	return buf
}

// Ready is closed once events after the cursor may be waiting; read them
// with Read, then ask for a new channel.
func (sub *Subscription) Ready() <-chan struct{} {
	f := sub.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if sub.reset != "" || sub.cursor < f.head {
		return closedChan
	}
	f.armed = true
	return f.wake
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	if sub.closed.CompareAndSwap(false, true) {
		sub.f.subs.Add(-1)
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// PublishGlobal publishes an event that concerns no one torrent, such as
// "settings" after the daemon's own settings changed; data is the payload
// the API sends as JSON. Never blocks. Safe for concurrent use.
func (c *Client) PublishGlobal(typ string, data any) {
	c.feed.publish(Event{Type: typ, Time: c.cfg.Now(), Data: data})
}

// eventMemo is what a session remembers to publish its events.
// Session-owned.
type eventMemo struct {
	// live: the torrent is in the table; events before it (building the
	// session, its first snapshots) are not news.
	live bool
	gone bool // removed: nothing more from this session
	// incomplete: the torrent was downloading since it last completed, so
	// reaching seeding is a completion.
	incomplete  bool
	progressAt  time.Time // the last progress event
	progressDue bool      // a progress change waits for the throttle
}

// torrentEvent is an event of the session with sn's figures.
func (s *Session) torrentEvent(typ string, sn *Snapshot) Event {
	return Event{
		Type: typ, InfoHash: s.ih, Time: sn.At, Name: sn.Name, State: sn.State, Error: sn.Error,
		NumPieces: sn.NumPieces, Have: sn.Have, NumFiles: len(sn.Files), Size: sn.Size, Left: sn.Left,
		Downloaded: sn.Downloaded, Uploaded: sn.Uploaded, DownRate: sn.DownRate, UpRate: sn.UpRate,
	}
}

// emitAdded publishes the added event of a new torrent, before it is
// started so that it comes first, and makes the session live. A torrent
// restored at start-up is made live without one: it was added in an
// earlier run, and 10,000 of them would flood the history.
func (s *Session) emitAdded(restored bool) {
	s.ev.live = true
	if restored {
		return
	}
	sn := s.snap.Load()
	ev := s.torrentEvent(EventAdded, sn)
	st := sn.Settings
	ev.Settings = &st
	ev.Time = s.c.cfg.Now()
	s.c.feed.publish(ev)
}

// emitRemoved publishes the removal; the session is silent after it.
func (s *Session) emitRemoved(deleted bool) {
	if s.ev.gone {
		return
	}
	s.ev.gone = true
	s.c.feed.publish(Event{Type: EventRemoved, InfoHash: s.ih, Time: s.c.cfg.Now(), Name: s.name(), Deleted: deleted})
}

// emit publishes what changed from old to sn (c, from diffSnapshots).
func (s *Session) emit(old, sn *Snapshot, c Change) {
	if !s.ev.live || s.ev.gone || old == nil {
		return
	}
	f := s.c.feed
	if sn.State == StateDownloading {
		s.ev.incomplete = true
	}
	if c&ChangeState != 0 {
		ev := s.torrentEvent(EventState, sn)
		ev.OldState = old.State
		f.publish(ev)
		if sn.State == StateError && (old.State != StateError || old.Error != sn.Error) {
			f.publish(s.torrentEvent(EventError, sn))
		}
		if sn.State == StateSeeding && s.ev.incomplete {
			s.ev.incomplete = false
			// Its last figures go before the completion, throttled or not.
			f.publish(s.torrentEvent(EventProgress, sn))
			s.ev.progressAt, s.ev.progressDue = sn.At, false
			f.publish(s.torrentEvent(EventCompleted, sn))
		}
	}
	if c&ChangeSettings != 0 && settingsDiffer(old.Settings, sn.Settings) {
		ev := s.torrentEvent(EventSettings, sn)
		st := sn.Settings
		ev.Settings = &st
		f.publish(ev)
	}
	if c&(ChangeProgress|ChangeRates) != 0 {
		s.ev.progressDue = true
	}
	s.flushProgress(sn, sn.At)
}

// flushProgress publishes a due progress event once the throttle allows
// at now, with sn's figures (the latest snapshot's): every change is shown
// within a second, however many snapshots came between. Called at every
// publish, also one that found nothing new, which is the trailing emit of
// a torrent gone quiet (the ticker wakes it for that: progressWake).
func (s *Session) flushProgress(sn *Snapshot, now time.Time) {
	if !s.ev.progressDue || !s.ev.live || s.ev.gone || sn == nil {
		return
	}
	if !s.ev.progressAt.IsZero() && now.Sub(s.ev.progressAt) < progressEvery-progressSlack {
		return
	}
	s.ev.progressAt, s.ev.progressDue = now, false
	ev := s.torrentEvent(EventProgress, sn)
	ev.Time = now
	s.c.feed.publish(ev)
}

// progressWake is when a held progress event is due, for the ticker; zero
// when none is held.
func (s *Session) progressWake() time.Time {
	if !s.ev.progressDue || s.ev.gone {
		return time.Time{}
	}
	return s.ev.progressAt.Add(progressEvery)
}

// settingsDiffer ignores Stopped: starting and stopping show as state
// events, and the flag is only what a restart should do.
func settingsDiffer(a, b Settings) bool {
	a.Stopped = b.Stopped
	return a != b
}
