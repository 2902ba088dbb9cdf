package httpapi

// GET /events: the engine's event feed as Server-Sent Events. Each stream
// runs on the goroutine fasthttp gives a body stream writer and reads its
// own engine.Subscription; the connection's goroutine copies what it writes
// to the socket. A stream holds at most one batch of events and fasthttp's
// four pipe buffers, so a slow reader costs a bounded amount of memory and
// is dropped after EventWriteTimeout without progress, or when it falls
// more than the feed's history behind.

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

const (
	eventsPath = "/events"
	// DefaultMaxEventStreams is Config.MaxEventStreams when it is zero:
	// well under MaxConns, so streams cannot take every API connection.
	DefaultMaxEventStreams = 256
	// DefaultEventHeartbeat is Config.EventHeartbeat when it is zero:
	// under the minute proxies and load balancers commonly allow an idle
	// connection.
	DefaultEventHeartbeat = 15 * time.Second
	// DefaultEventWriteTimeout is Config.EventWriteTimeout when it is
	// zero: how long one flush may wait for a reader.
	DefaultEventWriteTimeout = 10 * time.Second

	// eventBatch is how many events a stream reads and writes per flush.
	eventBatch = 256
	// eventRetryMillis is the reconnection delay the stream suggests.
	eventRetryMillis = 3000
)

// streamLimits are Config's event stream settings with defaults applied.
type streamLimits struct {
	max          int
	heartbeat    time.Duration
	writeTimeout time.Duration
}

func resolveStreamLimits(cfg Config) streamLimits {
	l := streamLimits{max: cfg.MaxEventStreams, heartbeat: cfg.EventHeartbeat, writeTimeout: cfg.EventWriteTimeout}
	if l.max <= 0 {
		l.max = DefaultMaxEventStreams
	}
	if l.heartbeat <= 0 {
		l.heartbeat = DefaultEventHeartbeat
	}
	if l.writeTimeout <= 0 {
		l.writeTimeout = DefaultEventWriteTimeout
	}
	return l
}

// EventStreams counts the /events streams open. Safe for concurrent use.
func (s *Server) EventStreams() int { return int(s.streams.Load()) }

// events answers GET /events. Authentication is done; the pacer is not
// involved: a stream is long-lived and charges nothing per event.
func (s *Server) events(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, http.MethodGet)
		writeError(ctx, http.StatusMethodNotAllowed, "use GET")
		return
	}
	last, err := lastEventID(ctx)
	if err != nil {
		writeAPIError(ctx, err)
		return
	}
	if int(s.streams.Add(1)) > s.streamLim.max {
		s.streams.Add(-1)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(busyRetryAfter))
		writeError(ctx, http.StatusServiceUnavailable, "too many event streams; retry later")
		return
	}
	conn := ctx.Conn()
	if tc, ok := conn.(*trackedConn); ok {
		tc.streaming.Store(true)
	}
	// Set by the handler, fasthttp leaves the deadline to us; each flush
	// sets its own.
	_ = ctx.SetWriteDeadline(time.Now().Add(s.streamLim.writeTimeout))
	sub := s.cfg.Client.Subscribe(last)
	ctx.Response.Header.SetContentType("text/event-stream")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
	ctx.Response.Header.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	// The connection serves nothing after the stream: a dropped reader
	// is closed, not kept alive.
	ctx.SetConnectionClose()
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.Add(-1)
		defer sub.Close()
		defer func() {
			// fasthttp runs this on a goroutine of its own, without a
			// recover: a bug must end the stream, not the daemon.
			if r := recover(); r != nil {
				s.cfg.Logf("httpapi: panic in an event stream: %v", r)
			}
		}()
		s.streamEvents(w, conn, sub)
	})
}

// lastEventID is where the client left off: the Last-Event-ID header an
// EventSource sends when it reconnects, else ?last_event_id= for clients
// that cannot set headers (the header wins: a reconnecting EventSource
// keeps the URL it started with). 0 or absent: from now on.
func lastEventID(ctx *fasthttp.RequestCtx) (uint64, error) {
	v := string(ctx.Request.Header.Peek("Last-Event-ID"))
	name := "Last-Event-ID"
	if v == "" {
		q, err := query(ctx, "last_event_id")
		if err != nil {
			return 0, err
		}
		v, name = q, "last_event_id"
	}
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("%s must be an event id (decimal digits)", name)
	}
	return id, nil
}

// streamEvents writes sub's events to w until the server stops, the
// client goes, or it falls behind.
func (s *Server) streamEvents(w *bufio.Writer, conn net.Conn, sub *engine.Subscription) {
	out := make([]byte, 0, 16<<10)
	out = append(out, "retry: "...)
	out = strconv.AppendInt(out, eventRetryMillis, 10)
	out = append(out, "\n\n"...)
	buf := make([]engine.Event, 0, eventBatch)
	hb := time.NewTimer(s.streamLim.heartbeat)
	defer hb.Stop()
	for {
		if len(out) > 0 {
			if !s.flushEvents(w, conn, out) {
				return
			}
			out = out[:0]
			hb.Reset(s.streamLim.heartbeat)
		}
		select {
		case <-s.stop:
			return
		case <-hb.C:
			out = append(out, ": heartbeat\n\n"...)
		case <-sub.Ready():
			buf = sub.Read(buf[:0])
			for i := range buf {
				ev := &buf[i]
				out = appendEvent(out, ev)
				if ev.Type == engine.EventReset && ev.Data == engine.ResetBehind {
					// Dropped rather than buffered: the client reconnects
					// and starts over from what it reads again.
					s.flushEvents(w, conn, out)
					return
				}
			}
			clear(buf) // the events' payloads are the ring's, not ours to keep
		}
	}
}

// flushEvents writes out within the write timeout.
func (s *Server) flushEvents(w *bufio.Writer, conn net.Conn, out []byte) bool {
	// The deadline bounds the connection goroutine's socket writes; ours
	// go into fasthttp's pipe and fail once it gives up.
	if conn != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(s.streamLim.writeTimeout))
	}
	if _, err := w.Write(out); err != nil {
		return false
	}
	return w.Flush() == nil
}

// appendEvent appends ev in the text/event-stream format.
func appendEvent(out []byte, ev *engine.Event) []byte {
	data, err := json.Marshal(eventData(ev))
	if err != nil {
		data = []byte(`{}`)
	}
	out = append(out, "id: "...)
	out = strconv.AppendUint(out, ev.ID, 10)
	out = append(out, "\nevent: "...)
	out = append(out, ev.Type...) // engine's names and PublishGlobal's: no newlines
	out = append(out, "\ndata: "...)
	out = append(out, data...) // JSON escapes every newline
	return append(out, "\n\n"...)
}

// Event data, per type. Units are the API's: KiB and KiB/s; times RFC 3339.
type (
	eventTorrent struct {
		InfoHash string `json:"infohash"`
		Time     string `json:"time"`
		Name     string `json:"name"`
	}
	eventAdded struct {
		eventTorrent
		State    string  `json:"state"`
		Size     int64   `json:"size"`
		Progress float64 `json:"progress"`
		eventSettings
	}
	eventRemoved struct {
		eventTorrent
		Deleted bool `json:"deleted"`
	}
	eventState struct {
		eventTorrent
		Old   string  `json:"old"`
		State string  `json:"state"`
		Error *string `json:"error"`
	}
	eventProgress struct {
		eventTorrent
		State      string  `json:"state"`
		Progress   float64 `json:"progress"`
		Have       int     `json:"have"`
		Pieces     int     `json:"pieces"`
		Size       int64   `json:"size"`
		Left       int64   `json:"left"`
		Downloaded int64   `json:"downloaded"`
		Uploaded   int64   `json:"uploaded"`
		DownRate   int64   `json:"downrate"`
		UpRate     int64   `json:"uprate"`
	}
	eventError struct {
		eventTorrent
		Error string `json:"error"`
	}
	// eventLimit: a ratio or seed-time limit stopped or removed the
	// torrent.
	eventLimit struct {
		eventTorrent
		Reason string `json:"reason"`
		Action string `json:"action"`
	}
	eventTorrentSettings struct {
		eventTorrent
		eventSettings
	}
	// eventSettings is a torrent's settings as the API speaks them: ratio
	// and seed-time limits -1 for the global one, 0 for none.
	eventSettings struct {
		Path          string  `json:"path"`
		MaxDown       int64   `json:"maxdown"`
		MaxUp         int64   `json:"maxup"`
		Sequential    bool    `json:"sequential"`
		Label         string  `json:"label"`
		RatioLimit    float64 `json:"ratio_limit"`
		SeedTimeLimit int64   `json:"seed_time_limit"`
		Priorities    []int   `json:"priorities"`
	}
	eventGlobal struct {
		Time string `json:"time"`
	}
	eventReset struct {
		Time   string `json:"time"`
		Reason any    `json:"reason"`
	}
)

// eventData is the JSON of ev's data line. A global event's is its
// PublishGlobal payload as given.
func eventData(ev *engine.Event) any {
	t := ev.Time.UTC().Format(time.RFC3339Nano)
	base := eventTorrent{InfoHash: ev.InfoHash.String(), Time: t, Name: ev.Name}
	switch ev.Type {
	case engine.EventReset:
		return eventReset{Time: t, Reason: ev.Data}
	case engine.EventAdded:
		return eventAdded{eventTorrent: base, State: ev.State.String(), Size: ev.Size,
			Progress: finite(ev.Progress()), eventSettings: settingsOf(ev)}
	case engine.EventRemoved:
		return eventRemoved{eventTorrent: base, Deleted: ev.Deleted}
	case engine.EventState:
		return eventState{eventTorrent: base, Old: ev.OldState.String(), State: ev.State.String(), Error: nullable(ev.Error)}
	case engine.EventError:
		return eventError{eventTorrent: base, Error: ev.Error}
	case engine.EventLimit:
		action, _ := ev.Data.(string)
		return eventLimit{eventTorrent: base, Reason: ev.Error, Action: action}
	}
	if ev.InfoHash == ([20]byte{}) {
		if ev.Data != nil {
			return ev.Data
		}
		return eventGlobal{Time: t}
	}
	if ev.Type == engine.EventSettings {
		return eventTorrentSettings{eventTorrent: base, eventSettings: settingsOf(ev)}
	}
	// progress, completed: the torrent's figures.
	return eventProgress{eventTorrent: base, State: ev.State.String(), Progress: finite(ev.Progress()),
		Have: ev.Have, Pieces: ev.NumPieces, Size: ev.Size, Left: ev.Left, Downloaded: kib(ev.Downloaded),
		Uploaded: kib(ev.Uploaded), DownRate: kib(ev.DownRate), UpRate: kib(ev.UpRate)}
}

func settingsOf(ev *engine.Event) eventSettings {
	if ev.Settings == nil {
		return eventSettings{Priorities: []int{}}
	}
	st := ev.Settings
	out := eventSettings{Path: st.Dir, MaxDown: kib(st.MaxDown), MaxUp: kib(st.MaxUp), Sequential: st.Sequential,
		Label: st.Label, RatioLimit: engineToAPILimit(st.RatioLimit), SeedTimeLimit: int64(engineToAPILimit(float64(st.SeedTimeLimit))),
		Priorities: make([]int, 0, ev.NumFiles)}
	for i := range ev.NumFiles {
		out.Priorities = append(out.Priorities, st.FilePriority(i))
	}
	return out
}
