package httpapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// Lines logged through the ring's handler come out of GET /logs, in
// order, with their attributes as strings, and still reach the handler
// behind it; after= skips what was seen; only the last lines are kept.
func TestLogs(t *testing.T) {
	ring := NewLogRing(5)
	var out bytes.Buffer
	log := slog.New(ring.Wrap(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	e := newEnv(t, func(c *Config) { c.Token = "logs-token"; c.Logs = ring.Since })

	r := e.must(e.do("GET", "/logs", nil), http.StatusOK)
	if lines := r.json["lines"].([]any); len(lines) != 0 || r.json["last"] != 0.0 {
		t.Fatalf("empty ring: %s", r.raw)
	}
	log.With("component", "engine").WithGroup("t").Info("added a torrent", "name", "x", "size", 42)
	log.Debug("not logged at info")
	log.Warn("disk full", slog.Group("disk", "free", int64(7)))
	r = e.must(e.do("GET", "/logs?after=0", nil), http.StatusOK)
	lines := r.json["lines"].([]any)
	if len(lines) != 2 || r.json["last"] != 2.0 {
		t.Fatalf("two lines: %s", r.raw)
	}
	l0, l1 := lines[0].(map[string]any), lines[1].(map[string]any)
	a0 := l0["attrs"].(map[string]any)
	if l0["id"] != 1.0 || l0["level"] != "INFO" || l0["msg"] != "added a torrent" || a0["component"] != "engine" ||
		a0["t.name"] != "x" || a0["t.size"] != "42" || !strings.HasSuffix(l0["time"].(string), "Z") {
		t.Errorf("first line %v", l0)
	}
	if l1["level"] != "WARN" || l1["attrs"].(map[string]any)["disk.free"] != "7" {
		t.Errorf("second line %v", l1)
	}
	if !strings.Contains(out.String(), "added a torrent") || strings.Contains(out.String(), "not logged") {
		t.Errorf("the wrapped handler got %q", out.String())
	}
	r = e.must(e.do("GET", "/logs?after=1", nil), http.StatusOK)
	if lines := r.json["lines"].([]any); len(lines) != 1 || lines[0].(map[string]any)["id"] != 2.0 {
		t.Errorf("after=1: %s", r.raw)
	}
	for i := range 10 {
		log.Info(fmt.Sprint("line ", i))
	}
	r = e.must(e.do("GET", "/logs", nil), http.StatusOK)
	lines = r.json["lines"].([]any)
	if len(lines) != 5 || lines[0].(map[string]any)["msg"] != "line 5" || lines[4].(map[string]any)["id"] != 12.0 || r.json["last"] != 12.0 {
		t.Errorf("after wrapping: %s", r.raw)
	}
	for _, q := range []string{"after=-1", "after=x"} {
		e.must(e.do("GET", "/logs?"+q, nil), http.StatusBadRequest)
	}
	if r := e.doAuth("GET", "/logs", nil, ""); r.status != http.StatusUnauthorized {
		t.Errorf("/logs without the token: %d", r.status)
	}
}
