package engine

import (
	"fmt"
	"log/slog"
	"time"
)

// lifecycle is where a torrent is in its life. Its state changes only
// through Session.to, along the transitions table: a move the table does
// not list is refused and logged, so no handler can put a torrent in a
// state it cannot leave. Session-owned.
type lifecycle struct {
	state State
	err   error // why state is StateError
	// started is when the current run started; zero until first started.
	started time.Time
	// checkThenStop: the running check was asked for while stopped.
	checkThenStop bool
	// gen changes at every start, check and stop, so a job's outcome from
	// an earlier run is recognised and dropped.
	gen      uint32
	rechecks int // full rechecks run since the session was created
}

// trigger is what moves a torrent from one state to another.
type trigger uint8

const (
	onMagnet   trigger = iota + 1 // started without metadata: fetch the info dict
	onFindData                    // started without a trusted piece set: stat the files
	onCheck                       // data may be on disk (or the user asks): hash it
	onBegin                       // the verified set is known and incomplete
	onComplete                    // every piece verified
	onMetadata                    // the info dict arrived: start over with it
	onStop                        // the user, a shutdown or a check asked for while stopped
	onFail                        // a disk, metadata or resume error
	onMove                        // its data moves to another folder
	onWant                        // a skipped file became wanted: pieces are missing again
)

var triggerNames = [...]string{"", "magnet", "find-data", "check", "begin", "complete", "metadata", "stop", "fail", "move", "want"}

func (t trigger) String() string {
	if int(t) < len(triggerNames) {
		return triggerNames[t]
	}
	return fmt.Sprintf("trigger(%d)", t)
}

// transitions is the torrent's whole life: on a trigger, from any of the
// listed states, to the next one.
var transitions = []struct {
	on   trigger
	from []State
	to   State
}{
	{onMagnet, []State{StateStopped, StateError}, StateMetadata},
	{onFindData, []State{StateStopped, StateError}, StateChecking},
	{onCheck, []State{StateStopped, StateError, StateChecking, StateDownloading, StateSeeding}, StateChecking},
	{onBegin, []State{StateStopped, StateError, StateChecking}, StateDownloading},
	{onComplete, []State{StateStopped, StateError, StateChecking, StateDownloading}, StateSeeding},
	{onMetadata, []State{StateMetadata}, StateStopped},
	{onStop, []State{StateStopped, StateChecking, StateDownloading, StateSeeding, StateError, StateMetadata, StateMoving}, StateStopped},
	{onFail, []State{StateStopped, StateChecking, StateDownloading, StateSeeding, StateError, StateMetadata, StateMoving}, StateError},
	{onMove, []State{StateStopped, StateDownloading, StateSeeding, StateError}, StateMoving},
	{onWant, []State{StateSeeding}, StateDownloading},
}

// nextState looks a move up in the table.
func nextState(from State, on trigger) (State, bool) {
	for _, t := range transitions {
		if t.on != on {
			continue
		}
		for _, f := range t.from {
			if f == from {
				return t.to, true
			}
		}
	}
	return from, false
}

// to moves the torrent on a trigger, or refuses (and logs) a move the
// table does not allow.
func (s *Session) to(on trigger) bool {
	next, ok := nextState(s.life.state, on)
	if !ok {
		s.logAt(slog.LevelWarn, "state change refused", "trigger", on.String(), "state", s.life.state.String())
		return false
	}
	if next == StateSeeding {
		s.seedTime.enter(s.now)
	} else {
		s.seedTime.leave(s.now)
	}
	s.life.state = next
	s.dirty = true
	return true
}
