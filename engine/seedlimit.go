package engine

import (
	"log/slog"
	"time"

	"gotorrentserver/engine/resume"
)

// seedClock counts the time a torrent spends seeding over its life.
// Session-owned.
type seedClock struct {
	base  time.Duration // accounted so far, earlier runs included
	since time.Time     // when the current seeding spell began; zero if not seeding
}

// account moves the current spell into base up to now.
func (c *seedClock) account(now time.Time) {
	if !c.since.IsZero() {
		if d := now.Sub(c.since); d > 0 {
			c.base += d
		}
		c.since = now
	}
}

// enter and leave follow the torrent into and out of state seeding.
func (c *seedClock) enter(now time.Time) {
	if c.since.IsZero() {
		c.since = now
	}
}

func (c *seedClock) leave(now time.Time) {
	c.account(now)
	c.since = time.Time{}
}

func (c *seedClock) total(now time.Time) time.Duration {
	t := c.base
	if !c.since.IsZero() && now.After(c.since) {
		t += now.Sub(c.since)
	}
	return t
}

// Ratio is uploaded over downloaded bytes, over the torrent's life; for a
// torrent that downloaded nothing (seeding data it was given) over its
// size, as Transmission counts it.
func Ratio(uploaded, downloaded, size int64) float64 {
	d := downloaded
	if d <= 0 {
		d = size
	}
	if d <= 0 {
		return 0
	}
	return float64(uploaded) / float64(d)
}

// totals are the torrent's byte totals over its life.
func (s *Session) totals() (down, up int64) {
	return s.persist.base.downloaded + s.stats.downloaded, s.persist.base.uploaded + s.stats.uploaded
}

// seedLimits returns the ratio and seed-time limits in force for this
// torrent (its own, else the global ones); 0 means none.
func (s *Session) seedLimits() (ratio float64, seedTime time.Duration) {
	g := s.c.Global()
	switch st := s.settings; {
	case st.RatioLimit > 0:
		ratio = st.RatioLimit
	case st.RatioLimit == 0:
		ratio = g.RatioLimit
	}
	switch st := s.settings; {
	case st.SeedTimeLimit > 0:
		seedTime = time.Duration(st.SeedTimeLimit) * time.Minute
	case st.SeedTimeLimit == 0:
		seedTime = time.Duration(g.SeedTimeLimit) * time.Minute
	}
	return ratio, seedTime
}

// checkSeedLimits stops or removes a seeding torrent that reached its
// ratio or seed-time limit (the global limit action says which), as
// qBittorrent and Transmission do. Starting it again without raising the
// limit stops it again at the next tick.
func (s *Session) checkSeedLimits() {
	if s.life.state != StateSeeding {
		return
	}
	ratioLimit, timeLimit := s.seedLimits()
	down, up := s.totals()
	var why string
	switch {
	case ratioLimit > 0 && Ratio(up, down, s.size()) >= ratioLimit:
		why = "ratio limit reached"
	case timeLimit > 0 && s.seedTime.total(s.now) >= timeLimit:
		why = "seed time limit reached"
	default:
		return
	}
	action := s.c.Global().LimitAction
	s.logAt(slog.LevelInfo, "seed limit reached", "reason", why, "action", action)
	s.limitReached = why
	if sn := s.snap.Load(); sn != nil {
		ev := s.torrentEvent(EventLimit, sn)
		ev.Time, ev.Error, ev.Data = s.now, why, action
		s.c.feed.publish(ev)
	}
	if action == resume.LimitRemove {
		s.stop(true)
		ih := s.ih
		// Remove waits for this session's thread: not from here.
		go s.c.Remove(ih, false)
		return
	}
	s.stop(true)
}
