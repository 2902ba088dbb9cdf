package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logFlags are -log-format and -log-level, for the commands that log
// (serve, get). Every line goes through one slog.Logger, each with a
// component attribute (serve, engine, netio, httpapi, dht, state).
type logFlags struct {
	json  bool
	level slog.Level
}

func (f *logFlags) register(fs *flag.FlagSet, def slog.Level) {
	f.level = def
	fs.Func("log-format", "log line `format`: text (key=value) or json (one object a line)", func(s string) error {
		switch s {
		case "text":
			f.json = false
		case "json":
			f.json = true
		default:
			return errors.New("want text or json")
		}
		return nil
	})
	fs.Func("log-level", fmt.Sprintf("least `level` logged: debug, info, warn or error (default %s)", strings.ToLower(def.String())), func(s string) error {
		switch strings.ToLower(s) {
		case "debug":
			f.level = slog.LevelDebug
		case "info":
			f.level = slog.LevelInfo
		case "warn", "warning":
			f.level = slog.LevelWarn
		case "error":
			f.level = slog.LevelError
		default:
			return errors.New("want debug, info, warn or error")
		}
		return nil
	})
}

// logger writes to w as the flags say.
func (f *logFlags) logger(w io.Writer) *slog.Logger {
	opt := &slog.HandlerOptions{Level: f.level}
	if f.json {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

// logfTo routes a printf-style hook (netio's, httpapi's, the DHT's and the
// state folder's Logf) into l at level, as component. Their messages start
// with their package's name ("netio: "), which the attribute now says.
func logfTo(l *slog.Logger, component string, level slog.Level) func(string, ...any) {
	l = l.With("component", component)
	prefix := component + ": "
	return func(format string, args ...any) {
		if !l.Enabled(context.Background(), level) {
			return
		}
		l.Log(context.Background(), level, strings.TrimPrefix(fmt.Sprintf(format, args...), prefix))
	}
}

// discardLogger logs nothing (fetch's throwaway session).
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
