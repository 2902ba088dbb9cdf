package engine

import (
	"context"
	"time"

	"gotorrentserver/engine/tracker"
)

// discovery finds peers: the torrent's trackers (BEP 12 tiers, and the
// event the next announce carries) and its DHT lookups. Session-owned.
type discovery struct {
	trackers   *tracker.Tiers
	key        uint32        // our announce key, stable for the session
	pendingEv  tracker.Event // to send with the next announce
	joined     bool          // trackers heard "started" for this run
	dhtRunning bool
	dhtNext    time.Time
	// custom is the announce list as the operator edited it, kept in the
	// resume record; nil while it is the metainfo's.
	custom [][]string
}

// carry makes ev ride on the next announce.
func (d *discovery) carry(ev tracker.Event) {
	if ev != tracker.None {
		d.pendingEv = ev
		d.trackers.AnnounceNow()
	}
}

// take hands the pending event to an announce.
func (d *discovery) take() tracker.Event {
	ev := d.pendingEv
	d.pendingEv = tracker.None
	return ev
}

// failed: an announce carrying ev failed, so the tracker still has to hear
// it unless a newer event waits.
func (d *discovery) failed(ev tracker.Event) {
	if ev != tracker.None && d.pendingEv == tracker.None {
		d.pendingEv = ev
	}
}

// join reports whether the trackers must hear "started": once per run.
func (d *discovery) join() bool {
	if d.joined {
		return false
	}
	d.joined = true
	return true
}

// dhtDue reports whether a DHT lookup may start now, and if so marks it
// running and schedules the next one (sooner while short of peers).
func (d *discovery) dhtDue(now time.Time, short bool) bool {
	if d.dhtRunning || now.Before(d.dhtNext) {
		return false
	}
	d.dhtRunning = true
	every := dhtEvery
	if short {
		every = dhtWhenShort
	}
	d.dhtNext = now.Add(every)
	return true
}

// announce starts an announce round on the tiers' current tracker when one
// is due. An event (started, completed) makes the round due now; if one is in
// flight, the event rides on the next round. The announce runs on the
// tracker client's goroutines and reports back as an event.
func (s *Session) announce(ev tracker.Event) {
	s.disc.carry(ev)
	if !s.disc.trackers.Due(s.now) {
		return
	}
	url, ok := s.disc.trackers.Next()
	if !ok {
		return
	}
	s.disc.trackers.Announcing(url)
	req := s.announceRequest(s.disc.take())
	req.TrackerID = s.disc.trackers.TrackerID(url)
	ctx, trk := s.c.ctx, s.c.trk
	s.submit(s.c.announces, func() event {
		r := tracker.Result{URL: url, Request: req}
		r.Response, r.Err = trk.Announce(ctx, url, req)
		return evFunc(func(s *Session) { s.announced(r) })
	})
}

func (s *Session) announceRequest(ev tracker.Event) tracker.AnnounceRequest {
	req := tracker.NewRequest(s.ih, s.c.cfg.PeerID, s.c.cfg.ListenPort)
	req.Uploaded, req.Downloaded, req.Left = s.stats.uploaded, s.stats.downloaded, s.left()
	req.Event, req.Key = ev, s.disc.key
	req.NumWant = 200
	if ev == tracker.Stopped {
		req.NumWant = 0
	}
	return req
}

func (s *Session) announced(r tracker.Result) {
	if r.Err != nil {
		s.disc.trackers.Failure(r.URL, r.Err, s.now)
		s.disc.failed(r.Request.Event)
	} else {
		s.disc.trackers.Success(r.URL, r.Response, s.now)
		if s.life.state == StateDownloading || s.life.state == StateSeeding {
			s.learn(r.Response.Peers, "tracker")
			s.connectPeers()
		}
	}
	// An idle torrent may not tick for 30 s: show the tracker's answer now.
	s.dirty = true
	s.publish()
}

// announceStopped tells every working tracker we left, best effort, bounded
// so that shutdown does not wait on a dead tracker.
func (s *Session) announceStopped() {
	url, ok := s.disc.trackers.Working()
	if !ok {
		return
	}
	req := s.announceRequest(tracker.Stopped)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	s.c.stopping.Add(1)
	trk, stopping := s.c.trk, &s.c.stopping
	s.submit(s.c.announces, func() event {
		trk.Announce(ctx, url, req)
		cancel()
		stopping.Done()
		return nil
	})
}
