package peertest

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// LTProgress is one "PROGRESS" line of lt_peer.py (--progress): the peer's
// counters and the moment it read them.
type LTProgress struct {
	At       time.Time
	Done     int64 // verified bytes of the torrent held
	Received int64 // payload bytes received since the peer started
	Sent     int64 // payload bytes sent since the peer started
	Peers    int
}

func parseLTProgress(line string) (LTProgress, bool) {
	var at float64
	var pr LTProgress
	n, err := fmt.Sscanf(line, "PROGRESS %f %d %d %d %d", &at, &pr.Done, &pr.Received, &pr.Sent, &pr.Peers)
	if err != nil || n != 5 || at <= 0 || math.IsInf(at, 0) {
		return LTProgress{}, false
	}
	sec, frac := math.Modf(at)
	pr.At = time.Unix(int64(sec), int64(frac*1e9))
	return pr, true
}

// LastProgress is the latest PROGRESS line p printed; false before the
// first (lt_peer.py prints them only with --progress).
func (p *Proc) LastProgress() (LTProgress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(p.lines[i], "PROGRESS ") {
			return parseLTProgress(p.lines[i])
		}
	}
	return LTProgress{}, false
}

// Progress is every PROGRESS line p printed so far, oldest first.
func (p *Proc) Progress() []LTProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []LTProgress
	for _, l := range p.lines {
		if pr, ok := parseLTProgress(l); ok {
			out = append(out, pr)
		}
	}
	return out
}
