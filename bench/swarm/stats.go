package swarm

import (
	"slices"
	"time"
)

// Stats are the swarm's cumulative counters at one moment.
type Stats struct {
	At         time.Time
	Elapsed    time.Duration // since Start
	Down, Up   int64         // payload bytes received (requested blocks) and sent
	PiecesOK   int64         // Leech with Verify: pieces whose SHA-1 matched
	PiecesBad  int64         // ... and did not
	Unexpected int64         // blocks nobody asked for (not counted in Down)
	Open       int64         // connections open now
	Handshaken int64         // of which past the handshake
	Dials      int64
	DialErrors int64
	// RemoteCloses counts dialed connections the remote closed (or that
	// failed) without us asking; ProtocolErrors those we closed for bad
	// data; Churned those closed by churn.
	RemoteCloses   int64
	ProtocolErrors int64
	Churned        int64
	PerConn        []int64 // payload bytes moved by each dialed slot, over its reconnects
	PerTorrent     []int64 // payload bytes moved on each of Config.Torrents' connections
	// FirstHandshake is when the first connection completed its handshake,
	// on the swarm's clock (since Start); 0 before.
	FirstHandshake time.Duration
	LastError      string // the last protocol error, "" if none
}

// Stats reads the counters. Any goroutine.
func (s *Swarm) Stats() Stats {
	now := time.Now()
	st := Stats{
		At: now, Elapsed: now.Sub(s.start),
		Down: s.cnt.down.Load(), Up: s.cnt.up.Load(),
		PiecesOK: s.cnt.piecesOK.Load(), PiecesBad: s.cnt.piecesBad.Load(), Unexpected: s.cnt.unexpected.Load(),
		Open: s.cnt.open.Load(), Handshaken: s.cnt.handshaken.Load(),
		Dials: s.cnt.dials.Load(), DialErrors: s.cnt.dialErrors.Load(),
		RemoteCloses: s.cnt.remoteCloses.Load(), ProtocolErrors: s.cnt.protocolErrors.Load(),
		Churned: s.cnt.churned.Load(),
		PerConn: make([]int64, len(s.slots)), PerTorrent: make([]int64, len(s.torrents)),
		FirstHandshake: time.Duration(s.cnt.firstHandshake.Load()),
	}
	for i := range s.slots {
		st.PerConn[i] = s.slots[i].bytes.Load()
	}
	for i, t := range s.torrents {
		st.PerTorrent[i] = t.moved.Load()
	}
	if e := s.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// Window is what moved between two Stats of the same swarm.
type Window struct {
	Seconds float64
	Bytes   int64   // payload bytes, both directions
	MBps    float64 // total, 10^6 bytes per second
	Conns   int     // dialed slots
	Active  int     // slots that moved any payload in the window
	// Per-connection rates over the window in KB/s (10^3 bytes), over all
	// slots (idle ones count as 0).
	ConnMin, ConnP10, ConnP50, ConnP90, ConnMax float64
}

// Rates compares two Stats taken from the same swarm, from before to.
func Rates(from, to Stats) Window {
	w := Window{Seconds: to.At.Sub(from.At).Seconds()}
	w.Bytes = (to.Down + to.Up) - (from.Down + from.Up)
	if w.Seconds <= 0 {
		return w
	}
	w.MBps = float64(w.Bytes) / 1e6 / w.Seconds
	rates := make([]float64, 0, len(to.PerConn))
	for i, b := range to.PerConn {
		d := b
		if i < len(from.PerConn) {
			d -= from.PerConn[i]
		}
		if d > 0 {
			w.Active++
		}
		rates = append(rates, float64(d)/1e3/w.Seconds)
	}
	w.Conns = len(rates)
	if len(rates) == 0 {
		return w
	}
	slices.Sort(rates)
	q := func(f float64) float64 { return rates[min(len(rates)-1, int(f*float64(len(rates))))] }
	w.ConnMin, w.ConnP10, w.ConnP50, w.ConnP90, w.ConnMax = rates[0], q(0.1), q(0.5), q(0.9), rates[len(rates)-1]
	return w
}
