package engine

import (
	"context"
	"time"

	"gotorrentserver/engine/tracker"
)

// announce starts an announce round on the tiers' current tracker when one
// is due. An event (started, completed) makes the round due now; if one is in
// flight, the event rides on the next round. The announce runs on the
// tracker client's goroutines and reports back as an event.
func (s *Session) announce(ev tracker.Event) {
	if ev != tracker.None {
		s.pendingEv = ev
		s.trackers.AnnounceNow()
	}
	if !s.trackers.Due(s.now) {
		return
	}
	url, ok := s.trackers.Next()
	if !ok {
		return
	}
	s.trackers.Announcing(url)
	req := s.announceRequest(s.pendingEv)
	req.TrackerID = s.trackers.TrackerID(url)
	s.pendingEv = tracker.None
	s.c.trk.AnnounceAsync(s.c.ctx, url, req, func(r tracker.Result) {
		s.post(evFunc(func(s *Session) { s.announced(r) }))
	})
}

func (s *Session) announceRequest(ev tracker.Event) tracker.AnnounceRequest {
	req := tracker.NewRequest(s.ih, s.c.cfg.PeerID, s.c.cfg.ListenPort)
	req.Uploaded, req.Downloaded, req.Left = s.stats.uploaded, s.stats.downloaded, s.left()
	req.Event, req.Key = ev, s.trkKey
	req.NumWant = 200
	if ev == tracker.Stopped {
		req.NumWant = 0
	}
	return req
}

func (s *Session) announced(r tracker.Result) {
	if r.Err != nil {
		s.trackers.Failure(r.URL, r.Err, s.now)
		if r.Request.Event != tracker.None && s.pendingEv == tracker.None {
			s.pendingEv = r.Request.Event // the tracker still has to hear it
		}
	} else {
		s.trackers.Success(r.URL, r.Response, s.now)
		if s.state == StateDownloading || s.state == StateSeeding {
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
	url, ok := s.trackers.Working()
	if !ok {
		return
	}
	req := s.announceRequest(tracker.Stopped)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	s.c.stopping.Add(1)
	s.c.trk.AnnounceAsync(ctx, url, req, func(tracker.Result) {
		cancel()
		s.c.stopping.Done()
	})
}
