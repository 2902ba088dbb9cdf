package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotorrentserver/netio/peertest"
)

// logLine is one line of serve -log-format json.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Component string `json:"component"`
	InfoHash  string `json:"infohash"`
	Name      string `json:"name"`
	Path      string `json:"path"`
	Deleted   *bool  `json:"deleted_data"`
	Took      string `json:"took"`
	Size      int64  `json:"size"`
}

// parseLogLines requires every non-empty line of out to be a JSON object
// with a time, a level, a message and a component.
func parseLogLines(t *testing.T, out string) []logLine {
	t.Helper()
	var lines []logLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("log line is not JSON (%v): %q\nwhole log:\n%s", err, sc.Text(), out)
		}
		for _, k := range []string{"time", "level", "msg", "component"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("log line lacks %q: %s", k, sc.Text())
			}
		}
		var l logLine
		json.Unmarshal(sc.Bytes(), &l)
		lines = append(lines, l)
	}
	return lines
}

// TestServeJSONLogEventsOnce: a real daemon run with -log-format json logs
// only JSON lines, and a torrent added over the API, downloaded from a
// seeder and removed with its data gets exactly one line each for added,
// completed and removed, at info, naming it.
func TestServeJSONLogEventsOnce(t *testing.T) {
	peertest.Require(t, "opentracker")
	_, mi, raw := swarmFixture(t, 2, 0)
	stateDir, downloads := t.TempDir(), t.TempDir()
	d := startServe(t, stateDir, downloads, freePort(t), "-log-format", "json")
	d.addTorrent(t, "path=dl", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	if b, code := d.get("/removetorrent?infohash=" + mi.InfoHash.String() + "&delete=true"); code != 200 {
		t.Fatalf("remove: %d %s", code, b)
	}
	if _, err := os.Stat(filepath.Join(downloads, "dl", mi.Name)); !os.IsNotExist(err) {
		t.Fatalf("data still there after remove with delete: %v", err)
	}
	d.stop(t)

	lines := parseLogLines(t, d.log.String())
	count := map[string][]logLine{}
	for _, l := range lines {
		if l.InfoHash == mi.InfoHash.String() {
			count[l.Msg] = append(count[l.Msg], l)
		}
	}
	for _, msg := range []string{"torrent added", "torrent completed", "torrent removed"} {
		got := count[msg]
		if len(got) != 1 {
			t.Fatalf("%d %q lines for the torrent, want 1:\n%s", len(got), msg, d.log.String())
		}
		if l := got[0]; l.Level != "INFO" || l.Component != "engine" || l.Name != mi.Name {
			t.Fatalf("%q line: %+v", msg, l)
		}
	}
	if p := count["torrent added"][0].Path; p != filepath.Join(downloads, "dl", mi.Name) {
		t.Fatalf("added line's path %q, want %q", p, filepath.Join(downloads, "dl", mi.Name))
	}
	if c := count["torrent completed"][0]; c.Size != mi.TotalLength || c.Took == "" {
		t.Fatalf("completed line: %+v", c)
	}
	if r := count["torrent removed"][0]; r.Deleted == nil || !*r.Deleted {
		t.Fatalf("removed line does not say the data was deleted: %+v", r)
	}
	var ready, stopping int
	for _, l := range lines {
		switch {
		case l.Component == "serve" && strings.HasPrefix(l.Msg, "peers on "):
			ready++
		case l.Component == "serve" && l.Msg == "stopping":
			stopping++
		}
	}
	if ready != 1 || stopping != 1 {
		t.Fatalf("%d ready and %d stopping lines, want 1 each:\n%s", ready, stopping, d.log.String())
	}
}

// TestServeLogLevel: -log-level warn drops the info lines; a bad level or
// format is a usage error (exit 2) naming the choices.
func TestServeLogLevel(t *testing.T) {
	d := startServe(t, t.TempDir(), t.TempDir(), freePort(t), "-log-format", "json", "-log-level", "warn")
	d.stop(t)
	for _, l := range parseLogLines(t, d.log.String()) {
		if l.Level == "INFO" || l.Level == "DEBUG" {
			t.Fatalf("-log-level warn logged %+v", l)
		}
	}
	for _, args := range [][]string{{"serve", "-log-level", "loud"}, {"serve", "-log-format", "xml"}, {"get", "-log-level=verbose", "x.torrent"}} {
		_, errOut, code := runCLI(args...)
		if code != 2 || !strings.Contains(errOut, "want ") {
			t.Fatalf("%v: exit %d, %q", args, code, errOut)
		}
	}
}
