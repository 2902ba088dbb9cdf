package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

// The operator's per-torrent controls beside start, stop and rates. Each
// runs on the session's thread and answers once applied; what changes the
// resume record is handed to the persister before the call returns.

// ErrNotRunning: the call needs a running torrent.
var ErrNotRunning = errors.New("engine: torrent is not running")

// control runs f on the session and waits for its answer.
func (c *Client) control(ih metainfo.Hash, f func(s *Session) error) error {
	s := c.Session(ih)
	if s == nil {
		return ErrNotFound
	}
	done := make(chan error, 1)
	s.post(evFunc(func(s *Session) { done <- f(s) }))
	return <-done
}

// settingsChanged publishes and saves a change of the torrent's settings.
func (s *Session) settingsChanged() {
	s.dirty = true
	s.persist.dirty = true
	s.persist.restored = false
	s.publish()
	s.saveResume(true)
}

// SetLabel sets the torrent's label ("" clears it).
func (c *Client) SetLabel(ih metainfo.Hash, label string) error {
	return c.control(ih, func(s *Session) error {
		s.settings.Label = label
		s.settingsChanged()
		return nil
	})
}

// SetSequential switches the torrent between rarest-first and in-order
// piece selection, at once for a running download.
func (c *Client) SetSequential(ih metainfo.Hash, on bool) error {
	return c.control(ih, func(s *Session) error {
		s.settings.Sequential = on
		if s.dl.pick != nil {
			s.dl.pick.SetSequential(on)
		}
		s.settingsChanged()
		return nil
	})
}

// SetRatioLimit sets the torrent's own ratio limit in the engine's terms
// (Settings.RatioLimit: 0 follows the global setting, negative is none).
func (c *Client) SetRatioLimit(ih metainfo.Hash, ratio float64) error {
	return c.control(ih, func(s *Session) error {
		s.settings.RatioLimit = ratio
		s.settingsChanged()
		return nil
	})
}

// SetSeedTimeLimit sets the torrent's own seed-time limit in minutes, in
// the engine's terms (0 follows the global setting, negative is none).
func (c *Client) SetSeedTimeLimit(ih metainfo.Hash, minutes int64) error {
	return c.control(ih, func(s *Session) error {
		s.settings.SeedTimeLimit = minutes
		s.settingsChanged()
		return nil
	})
}

// Reannounce asks every tracker round and the DHT for peers now, as
// qBittorrent's "force reannounce" does.
func (c *Client) Reannounce(ih metainfo.Hash) error {
	return c.control(ih, func(s *Session) error {
		if !s.running() {
			return ErrNotRunning
		}
		s.disc.trackers.AnnounceNow()
		s.announce(tracker.None)
		s.disc.dhtNext = time.Time{}
		s.dhtAnnounce()
		return nil
	})
}

// AddPeer tells a torrent about a peer address and dials it when the
// torrent runs. Addresses we may not dial (broadcast, multicast, our own
// listener) are refused.
func (c *Client) AddPeer(ih metainfo.Hash, addr netip.AddrPort) error {
	if !c.dialable(addr) {
		return fmt.Errorf("%w: %s cannot be dialed", ErrBadSetting, addr)
	}
	return c.control(ih, func(s *Session) error {
		s.learn([]netip.AddrPort{addr}, "api")
		s.connectPeers()
		s.publish()
		return nil
	})
}

// ErrTrackerExists and ErrNoTracker answer tracker edits that change
// nothing.
var (
	ErrTrackerExists = errors.New("engine: tracker already listed")
	ErrNoTracker     = errors.New("engine: no such tracker")
	ErrPrivate       = errors.New("engine: private torrent")
)

// MaxTrackers bounds the trackers a torrent may be given through the
// API: each is an announce every interval and a status in every snapshot.
const MaxTrackers = 64

// AddTracker adds an announce URL in a tier of its own and announces to it
// at the next round. Private torrents keep the trackers their creator set
// (BEP 27).
func (c *Client) AddTracker(ih metainfo.Hash, url string) error {
	return c.control(ih, func(s *Session) error {
		if s.mi != nil && s.mi.Private {
			return fmt.Errorf("%w: its trackers cannot be changed", ErrPrivate)
		}
		if s.disc.trackers.Len() >= MaxTrackers {
			return fmt.Errorf("%w: a torrent has at most %d trackers", ErrBadSetting, MaxTrackers)
		}
		if !s.disc.trackers.Add(url) {
			return ErrTrackerExists
		}
		s.disc.custom = s.disc.trackers.List()
		if s.running() {
			s.disc.trackers.AnnounceNow()
			if !s.disc.joined {
				s.disc.carry(tracker.Started)
			}
		}
		s.settingsChanged()
		return nil
	})
}

// RemoveTracker drops an announce URL from the torrent.
func (c *Client) RemoveTracker(ih metainfo.Hash, url string) error {
	return c.control(ih, func(s *Session) error {
		if s.mi != nil && s.mi.Private {
			return fmt.Errorf("%w: its trackers cannot be changed", ErrPrivate)
		}
		if !s.disc.trackers.Remove(url) {
			return ErrNoTracker
		}
		s.disc.custom = s.disc.trackers.List()
		s.settingsChanged()
		return nil
	})
}

// setTrackers replaces the announce list with one the operator edited
// (from the resume record).
func (s *Session) setTrackers(list [][]string) {
	s.disc.trackers = tracker.NewTiers(list, nil)
	s.disc.custom = list
}
