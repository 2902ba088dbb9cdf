package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
)

// The engine logs through log/slog: a short message and attributes
// (infohash=, peer=, name=, error=), at a level. What an operator follows
// is info, once per occurrence: a torrent added, completed, removed, in
// error, a peer banned. Each peer's comings and goings are debug, checked
// before their arguments are built: a busy daemon drops thousands a minute.
// Client.log is set once by New and is safe for concurrent use.

// logger is the engine's logger as Config gives it: Logger, else Logf
// behind a handler that formats each record as one line, else slog's
// default.
func (c *Config) logger() *slog.Logger {
	switch {
	case c.Logger != nil:
		return c.Logger
	case c.Logf != nil:
		return slog.New(logfHandler{logf: c.Logf})
	}
	return slog.Default()
}

// logAt logs msg about this torrent at level l.
func (s *Session) logAt(l slog.Level, msg string, args ...any) {
	if !s.c.log.Enabled(context.Background(), l) {
		return
	}
	s.c.log.Log(context.Background(), l, msg, append([]any{"infohash", s.ih.String()}, args...)...)
}

// debugOn says whether debug lines are wanted, for call sites that would
// otherwise box their arguments for nothing.
func (c *Client) debugOn() bool { return c.log.Enabled(context.Background(), slog.LevelDebug) }

// logfHandler keeps Config.Logf working: each record at info or above
// becomes one "engine: msg key=value ..." line.
type logfHandler struct {
	logf  func(format string, args ...any)
	attrs []slog.Attr
}

func (h logfHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h logfHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("engine: ")
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.logf("%s", b.String())
	return nil
}

func (h logfHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logfHandler{logf: h.logf, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], attrs...)}
}

// WithGroup is not used by the engine; groups' attributes stay flat.
func (h logfHandler) WithGroup(string) slog.Handler { return h }

// logAdded is the one line of a torrent added: info when a user added it,
// debug when the persister brings it back at start-up (10,000 of those
// would bury everything else). The session is not yet in the table, so
// reading it here races nothing.
func (c *Client) logAdded(s *Session, opt AddOptions) {
	level, msg := slog.LevelInfo, "torrent added"
	if opt.Restored {
		level, msg = slog.LevelDebug, "torrent restored"
	}
	if !c.log.Enabled(context.Background(), level) {
		return
	}
	name, path := s.Snapshot().Name, s.settings.Dir
	if name != "" {
		path = filepath.Join(path, name)
	}
	args := []any{"infohash", s.ih.String(), "name", name, "path", path}
	if s.mi == nil {
		args = append(args, "magnet", true)
	}
	if opt.Stopped {
		args = append(args, "stopped", true)
	}
	c.log.Log(context.Background(), level, msg, args...)
}

// logCompleted is the one line of a download finishing: the last piece
// verified, on the session thread. took counts from this run's start.
func (s *Session) logCompleted() {
	took := s.now.Sub(s.life.started).Round(time.Millisecond)
	s.logAt(slog.LevelInfo, "torrent completed", "name", s.mi.Name, "size", s.size(),
		"downloaded", s.stats.downloaded, "took", took.String())
}

// logRemoved is the one line of a torrent removed, once its files are
// closed or deleted; an error deleting them makes it an error line.
func (c *Client) logRemoved(s *Session, deleteData bool, err error) {
	args := []any{"infohash", s.ih.String(), "name", s.Snapshot().Name, "deleted_data", deleteData}
	if err != nil {
		c.log.Error("torrent removed", append(args, "error", err.Error())...)
		return
	}
	c.log.Info("torrent removed", args...)
}
