package engine

import (
	"gotorrentserver/engine/storage"
)

// Work that may block (disk I/O, stat, SHA-1, waiting on a recheck, a DHT
// lookup) never runs on a session's thread. It goes one way: a job on one
// of the client's lanes, bounded pools of workers with bounded queues, and
// its outcome comes back to the session as an event. The lanes:
//
//   - disk: block reads and writes, stats, creating and removing files;
//   - hash: SHA-1 of pieces and of a magnet's info dict;
//   - wait: jobs that mostly wait on other lanes (a recheck feeding the hash
//     lane), so they cannot starve the lanes they wait on;
//   - net: DHT lookups, which wait on the network for up to 90 s;
//   - announces: tracker announces, each bounded by the tracker client's
//     own time-outs;
//   - web: web seed fetches (webseed.go), each bounded by a stall timeout
//     and webJobTimeout, and per server by webPerServer.
//
// A full lane pushes back: trySubmit reports it and the caller keeps the
// work (an upload request stays queued), or submit parks the job in the
// session's deferred list, retried after every batch. What a session can
// park is bounded by its own bounds: one start-up stat, one check, one
// metadata hash, one DHT lookup, one removal, and piece verifies under
// maxVerifyBacklog.

const (
	// waitWorkers is how many rechecks run at once; each keeps the whole
	// hash lane busy, so more would only interleave them.
	waitWorkers = 2
	// netWorkers bounds concurrent DHT lookups.
	netWorkers = 16
	// announceWorkers bounds concurrent tracker announces, as libtorrent's
	// default of a few dozen does.
	announceWorkers = 16
)

// job is work for a lane; the event it returns (nil for none) is posted to
// the session that submitted it.
type job func() event

type parkedJob struct {
	lane *storage.Pool
	work job
}

// trySubmit queues work on lane, or reports false when the lane is full or
// closed. Session thread only.
func (s *Session) trySubmit(lane *storage.Pool, work job) bool {
	return lane.TrySubmit(storage.Job{Kind: storage.KindFunc, Func: func() {
		if ev := work(); ev != nil {
			s.post(ev)
		}
	}})
}

// submit queues work on lane, parking it when the lane is full. Jobs keep
// their order among parked ones. Session thread only.
func (s *Session) submit(lane *storage.Pool, work job) {
	if len(s.parked) == 0 && s.trySubmit(lane, work) {
		return
	}
	s.parked = append(s.parked, parkedJob{lane, work})
}

// retryParked hands parked jobs to their lanes while they have room.
func (s *Session) retryParked() {
	n := 0
	for n < len(s.parked) && s.trySubmit(s.parked[n].lane, s.parked[n].work) {
		s.parked[n] = parkedJob{}
		n++
	}
	if n > 0 {
		s.parked = append(s.parked[:0], s.parked[n:]...)
	}
}
