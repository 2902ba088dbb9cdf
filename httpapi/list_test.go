package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// listRows reads /torrents and gives each row as an object keyed by the
// answer's fields.
func listRows(t *testing.T, e *env) []map[string]any {
	t.Helper()
	raw := e.must(e.do("GET", "/torrents", nil), http.StatusOK)
	r := raw.json
	// One row a line, so that the page can parse them as they arrive.
	lines := strings.Split(string(raw.raw), "\n")
	if n := len(r["rows"].([]any)); n > 0 && len(lines) != n+2 {
		t.Errorf("%d rows on %d lines: %s", n, len(lines), raw.raw)
	}
	for i := 1; i < len(lines)-1; i++ {
		var row []any
		if err := json.Unmarshal([]byte(strings.TrimSuffix(lines[i], ",")), &row); err != nil {
			t.Errorf("line %d is not a row: %v: %s", i, err, lines[i])
		}
	}
	if _, err := time.Parse(time.RFC3339, r["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	fields := r["fields"].([]any)
	var out []map[string]any
	for _, row := range r["rows"].([]any) {
		vals := row.([]any)
		if len(vals) != len(fields) {
			t.Fatalf("row of %d values for %d fields: %v", len(vals), len(fields), vals)
		}
		m := map[string]any{}
		for i, f := range fields {
			m[f.(string)] = vals[i]
		}
		out = append(out, m)
	}
	return out
}

// /torrents lists what /alldata does, field for field, in the same order;
// a change through the API shows in it at once (no stale cache).
func TestTorrentListMatchesAllData(t *testing.T) {
	e := newEnv(t, nil)
	if rows := listRows(t, e); len(rows) != 0 {
		t.Fatalf("rows of an empty client: %v", rows)
	}
	a, _ := newTorrent(t, "list-a", 21)
	b, _ := newTorrent(t, "list-b", 22)
	iha := e.add(a, url.Values{"start": {"false"}, "label": {"linux"}})
	time.Sleep(5 * time.Millisecond) // distinct Added times
	ihb := e.add(b, nil)
	e.waitTorrent(ihb, "downloading", func(m map[string]any) bool { return m["state"] == "downloading" })

	all := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any)
	rows := listRows(t, e)
	if len(rows) != len(all) || len(rows) != 2 {
		t.Fatalf("%d rows, /alldata %d sessions, want 2", len(rows), len(all))
	}
	for i, row := range rows {
		s := all[i].(map[string]any)
		for _, f := range listFields {
			got, want := row[f], s[f]
			switch f {
			case "added":
				at, _ := time.Parse(time.RFC3339, want.(string))
				want = float64(at.Unix())
			case "error":
				if want == nil {
					want = ""
				}
			}
			if got != want {
				t.Errorf("row %d %s = %v, /alldata has %v", i, f, got, want)
			}
		}
	}
	if rows[0]["infohash"] != iha.String() || rows[0]["label"] != "linux" || rows[0]["state"] != "stopped" ||
		rows[1]["infohash"] != ihb.String() || rows[1]["name"] != "list-b" || rows[1]["size"] == float64(0) {
		t.Errorf("rows %v", rows)
	}

	e.must(e.do("GET", "/setlabel?infohash="+iha.String()+"&label=movies", nil), http.StatusOK)
	if rows := listRows(t, e); rows[0]["label"] != "movies" {
		t.Errorf("label after /setlabel: %v", rows[0]["label"])
	}
	e.must(e.do("GET", "/removetorrent?infohash="+ihb.String(), nil), http.StatusOK)
	if rows := listRows(t, e); len(rows) != 1 || rows[0]["infohash"] != iha.String() {
		t.Errorf("rows after removing one: %v", rows)
	}
}
