package picker

import "time"

// endgame reports whether every missing block that some connected peer can
// give us is already requested or received. Pieces nobody has do not hold
// endgame back: waiting for them must not stop us from racing the last
// blocks we can get.
func (p *Picker) endgame() bool {
	if p.missing == 0 {
		return false
	}
	unstarted := p.nUntouched
	if p.seeds == 0 {
		unstarted -= len(p.buckets[0]) + len(p.hbuckets[0])
	}
	if unstarted > 0 {
		return false
	}
	for _, piece := range p.open {
		if p.Availability(int(piece)) > 0 {
			return false
		}
	}
	return true
}

// InEndgame reports whether Pick would now hand out duplicate requests.
// Session goroutine only.
func (p *Picker) InEndgame() bool { return p.endgame() }

// dupLimit is EndgameDup clamped to what a block can record.
func (p *Picker) dupLimit() int {
	if p.EndgameDup < 1 {
		return 1
	}
	return min(p.EndgameDup, maxDup)
}

// pickDuplicates requests blocks that are outstanding from other peers.
// Blocks with the fewest requesters go first, so one slow peer holding the
// last block gets a second source before any block gets a third.
func (p *Picker) pickDuplicates(ps *peerState, peer PeerID, v view, max int, now time.Time, out []Request) []Request {
	limit := p.dupLimit()
	for have := 1; have < limit && len(out) < max; have++ {
		for _, piece := range p.active {
			if len(out) >= max {
				break
			}
			if !v.has(int(piece)) {
				continue
			}
			part := p.parts[piece]
			for blk := range part.blocks {
				b := &part.blocks[blk]
				if b.state != blockRequested || int(b.n) != have || b.requestedBy(peer) {
					continue
				}
				p.request(ps, peer, part, blk, now)
				out = append(out, p.req(int(piece), blk))
				if len(out) >= max {
					break
				}
			}
		}
	}
	return out
}
