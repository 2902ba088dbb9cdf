package main

import (
	"fmt"

	"gotorrentserver/engine"
)

// waitingFor says why a download is not moving, or "" when it is (or is
// not downloading at all): no peers known, peers known but none connected,
// or peers connected with nothing we need. Only conditions that last are
// named (not "connected, none sending", which every pause between pieces
// would print).
func waitingFor(sn *engine.Snapshot) string {
	if sn.State != engine.StateDownloading && sn.State != engine.StateMetadata {
		return ""
	}
	if sn.DownRate > 0 {
		return ""
	}
	connected, relevant := 0, 0
	for _, p := range sn.Peers {
		if p.Connected {
			connected++
			if p.Relevance > 0 {
				relevant++
			}
		}
	}
	switch {
	case len(sn.Peers) == 0:
		return "no peers known yet (" + trackerSummary(sn) + ")"
	case connected == 0:
		return fmt.Sprintf("%s known, none connected", plural(len(sn.Peers), "peer"))
	case sn.State == engine.StateMetadata:
		return fmt.Sprintf("connected to %s, none has sent the torrent's metadata yet", plural(connected, "peer"))
	case relevant == 0:
		return fmt.Sprintf("connected to %s, none has pieces we need", plural(connected, "peer"))
	}
	return ""
}

// trackerSummary is "trackers: 1 of 2 answering; last error: ...".
func trackerSummary(sn *engine.Snapshot) string {
	if len(sn.Trackers) == 0 {
		return "the torrent has no trackers; give peers with -peer, or use -dht"
	}
	working, lastErr := 0, ""
	for _, t := range sn.Trackers {
		if t.Status == "working" {
			working++
		}
		if t.LastError != "" {
			lastErr = t.LastError
		}
	}
	s := fmt.Sprintf("trackers: %d of %d answering", working, len(sn.Trackers))
	if lastErr != "" {
		s += "; last error: " + lastErr
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
