package tracker

// The operator's edits of the announce list. Like every Tiers method they
// run on the goroutine that owns the torrent.

// Add appends url as a tier of its own (as qBittorrent and Transmission
// add a tracker) and makes it due now; false if it is already listed.
func (t *Tiers) Add(url string) bool {
	if url == "" || t.byURL[url] != nil {
		return false
	}
	e := &trackerEntry{status: TrackerStatus{URL: url, Status: StatusPending, Seeders: -1, Leechers: -1}}
	t.byURL[url] = e
	t.tiers = append(t.tiers, []*trackerEntry{e})
	return true
}

// Remove drops url from the list; false if it was not listed. The round's
// cursor stays on the tracker it named, or moves to the next one.
func (t *Tiers) Remove(url string) bool {
	e := t.byURL[url]
	if e == nil {
		return false
	}
	ti, pi := t.find(e)
	delete(t.byURL, url)
	if t.working == e {
		t.working = nil
	}
	if t.inFlight == url {
		t.inFlight = ""
	}
	t.tiers[ti] = append(t.tiers[ti][:pi:pi], t.tiers[ti][pi+1:]...)
	if len(t.tiers[ti]) == 0 {
		t.tiers = append(t.tiers[:ti:ti], t.tiers[ti+1:]...)
		if t.tier > ti {
			t.tier--
		} else if t.tier == ti {
			t.pos = 0
		}
	} else if t.tier == ti && t.pos > pi {
		t.pos--
	}
	if t.tier >= len(t.tiers) {
		t.tier, t.pos = 0, 0
	} else if t.pos >= len(t.tiers[t.tier]) {
		t.pos = 0
	}
	return true
}

// List is the announce list as it stands, tier by tier.
func (t *Tiers) List() [][]string {
	out := make([][]string, 0, len(t.tiers))
	for _, tier := range t.tiers {
		urls := make([]string, len(tier))
		for i, e := range tier {
			urls[i] = e.status.URL
		}
		out = append(out, urls)
	}
	return out
}
