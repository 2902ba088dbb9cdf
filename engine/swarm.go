package engine

import "gotorrentserver/engine/picker"

// swarm is the torrent's connected peers, by the id the session gave each
// when it attached. Session-owned.
type swarm struct {
	peers  map[picker.PeerID]*peer
	nextID picker.PeerID
}

func newSwarm() swarm { return swarm{peers: map[picker.PeerID]*peer{}} }

// add gives p the next id and keeps it.
func (w *swarm) add(p *peer) {
	w.nextID++
	p.id = w.nextID
	w.peers[p.id] = p
}

// remove forgets p.
func (w *swarm) remove(p *peer) { delete(w.peers, p.id) }

// unchoked counts the peers we upload to.
func (w *swarm) unchoked() int {
	n := 0
	for _, p := range w.peers {
		if !p.amChoking {
			n++
		}
	}
	return n
}
