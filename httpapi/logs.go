package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultLogLines is how many lines NewLogRing keeps when asked for 0.
const DefaultLogLines = 500

// LogLine is one log record as GET /logs answers it.
type LogLine struct {
	ID    uint64            `json:"id"`
	Time  string            `json:"time"` // RFC 3339 with milliseconds, UTC
	Level string            `json:"level"`
	Msg   string            `json:"msg"`
	Attrs map[string]string `json:"attrs"`
}

// logsJSON is the /logs answer: lines after the asked id, and the last id
// logged, to ask after next time.
type logsJSON struct {
	Lines []LogLine `json:"lines"`
	Last  uint64    `json:"last"`
}

// LogRing keeps the daemon's last log lines in memory for GET /logs. Wrap
// puts it in front of the daemon's slog.Handler; Since is Config.Logs.
// Safe for concurrent use.
type LogRing struct {
	mu    sync.Mutex
	lines []LogLine // circular, len <= cap
	next  int       // where the next line goes once full
	last  uint64    // id of the newest line; ids start at 1
}

// NewLogRing keeps the last n lines (0: DefaultLogLines).
func NewLogRing(n int) *LogRing {
	if n <= 0 {
		n = DefaultLogLines
	}
	return &LogRing{lines: make([]LogLine, 0, n)}
}

func (r *LogRing) add(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last++
	l.ID = r.last
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
}

// Since returns the kept lines with an id above after, oldest first, and
// the newest id (0 before any line).
func (r *LogRing) Since(after uint64) ([]LogLine, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []LogLine{}
	n := len(r.lines)
	for i := range n {
		l := r.lines[(r.next+i)%n]
		if l.ID > after {
			out = append(out, l)
		}
	}
	return out, r.last
}

// Wrap returns a handler that passes every record to next and keeps a
// copy of those next is enabled for.
func (r *LogRing) Wrap(next slog.Handler) slog.Handler {
	return &ringHandler{ring: r, next: next}
}

// ringHandler is LogRing's slog.Handler: attrs and group are what With
// and WithGroup added, already flattened.
type ringHandler struct {
	ring  *LogRing
	next  slog.Handler
	attrs []slog.Attr // keys qualified by their groups
	group string      // "a.b." prefix for the record's own attrs
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	line := LogLine{Time: rec.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Level: rec.Level.String(),
		Msg: rec.Message, Attrs: map[string]string{}}
	if rec.Time.IsZero() {
		line.Time = time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	for _, a := range h.attrs {
		line.Attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		flatten(line.Attrs, h.group, a)
		return true
	})
	h.ring.add(line)
	return h.next.Handle(ctx, rec)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	m := map[string]string{}
	for _, a := range as {
		flatten(m, h.group, a)
	}
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for k, v := range m {
		c.attrs = append(c.attrs, slog.String(k, v))
	}
	return &c
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = h.group + name + "."
	return &c
}

// flatten puts a into m as strings, groups as dotted keys.
func flatten(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(m, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	m[prefix+a.Key] = v.String()
}

// logs answers GET /logs?after=N.
func (s *Server) logs(ctx *fasthttp.RequestCtx) (any, error) {
	var after uint64
	if v := ctx.QueryArgs().Peek("after"); len(v) > 0 {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return nil, badRequest("after: want a line id, 0 or more")
		}
		after = n
	}
	if s.cfg.Logs == nil {
		return logsJSON{Lines: []LogLine{}}, nil
	}
	lines, last := s.cfg.Logs(after)
	if lines == nil {
		lines = []LogLine{}
	}
	return logsJSON{Lines: lines, Last: last}, nil
}
