package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

func state(m map[string]any) string { s, _ := m["state"].(string); return s }

// Seeds beyond max_active_seeds wait in state queued, first in the queue
// first; moving one to the front swaps which seeds; stopping one lets the
// next in; lifting the limit starts them all.
func TestQueueLimitsSeeds(t *testing.T) {
	e := newEnv(t, nil)
	e.must(e.do("POST", "/settings", []byte(`{"max_active_seeds":1}`)), http.StatusOK)
	var ihs []metainfo.Hash
	for i, name := range []string{"qa", "qb", "qc"} {
		folder := makeData(t, e.root, name, uint64(i+1), 30<<10)
		ihs = append(ihs, e.add(makeTorrent(t, folder), url.Values{"path": {""}}))
	}
	states := func() []string {
		var out []string
		for _, ih := range ihs {
			out = append(out, state(e.torrent(ih)))
		}
		return out
	}
	want := func(what string, w ...string) {
		t.Helper()
		e.waitTorrent(ihs[0], what, func(map[string]any) bool {
			got := states()
			for i := range w {
				if got[i] != w[i] {
					return false
				}
			}
			return true
		})
	}
	want("one seed, two queued", "seeding", "queued", "queued")
	for i, ih := range ihs {
		if p := e.torrent(ih)["queue_position"]; p != float64(i) {
			t.Fatalf("torrent %d: queue_position %v", i, p)
		}
	}
	e.must(e.do("GET", "/setqueueposition?infohash="+ihs[2].String()+"&position=0", nil), http.StatusOK)
	want("the moved one seeding instead", "queued", "queued", "seeding")
	if p := e.torrent(ihs[0])["queue_position"]; p != float64(1) {
		t.Fatalf("first added now at %v, want 1", p)
	}
	e.must(e.do("GET", "/stoptorrent?infohash="+ihs[2].String(), nil), http.StatusOK)
	want("the next in line seeding", "seeding", "queued", "stopped")
	// A user's start under the limits queues it; it runs when its turn comes.
	e.must(e.do("GET", "/starttorrent?infohash="+ihs[2].String(), nil), http.StatusOK)
	want("started one back at the front", "queued", "queued", "seeding")
	e.must(e.do("POST", "/settings", []byte(`{"max_active_seeds":0}`)), http.StatusOK)
	want("all seeding once the limit is lifted", "seeding", "seeding", "seeding")
	e.must(e.do("GET", "/setqueueposition?infohash="+ihs[0].String()+"&position=-1", nil), http.StatusBadRequest)
	e.must(e.do("GET", "/setqueueposition?infohash="+metainfo.Hash{1}.String()+"&position=0", nil), http.StatusNotFound)
}

func TestSettingsCalls(t *testing.T) {
	e := newEnv(t, nil)
	r := e.must(e.do("GET", "/settings", nil), http.StatusOK)
	for _, k := range []string{"maxdown", "maxup", "max_active_downloads", "max_active_seeds", "ratio_limit",
		"seed_time_limit", "limit_action", "default_path"} {
		if _, ok := r.json[k]; !ok {
			t.Errorf("GET /settings lacks %s: %s", k, r.raw)
		}
	}
	if r.json["limit_action"] != "stop" {
		t.Errorf("default limit_action %v", r.json["limit_action"])
	}
	sub := e.client.Subscribe(0)
	defer sub.Close()
	r = e.must(e.do("POST", "/settings", []byte(`{"maxup":512,"ratio_limit":1.5,"default_path":"incoming/tv"}`)), http.StatusOK)
	if evs := sub.Read(nil); len(evs) != 1 || evs[0].Type != "settings" || evs[0].Data.(settingsJSON).MaxUp != 512 {
		t.Fatalf("events after POST /settings: %+v", evs)
	}
	if r.json["maxup"] != float64(512) || r.json["ratio_limit"] != 1.5 || r.json["default_path"] != "incoming/tv" || r.json["maxdown"] != float64(0) {
		t.Fatalf("after a partial update: %s", r.raw)
	}
	if _, up := e.client.Global().MaxDown, e.client.Global().MaxUp; up != 512<<10 {
		t.Fatalf("engine's global upload limit %d", up)
	}
	for _, bad := range []string{`{"maxup":-1}`, `{"ratio_limit":-2}`, `{"limit_action":"delete"}`, `{"nope":1}`,
		`{"default_path":"../../etc"}`, `{"max_active_seeds":1.5}`, `[]`, `{"maxup":1}{}`} {
		r := e.must(e.do("POST", "/settings", []byte(bad)), http.StatusBadRequest)
		if r.errMsg() == "" {
			t.Errorf("%s: no error message", bad)
		}
	}
	// Nothing of a refused update is applied.
	r = e.must(e.do("POST", "/settings", []byte(`{"maxup":7,"limit_action":"delete"}`)), http.StatusBadRequest)
	if g := e.client.Global(); g.MaxUp != 512<<10 || g.LimitAction != "stop" {
		t.Fatalf("refused update applied: %+v", g)
	}
	// An add without a folder goes to the default path.
	raw, mi := newTorrent(t, "dp", 3)
	ih := e.add(raw, url.Values{"start": {"false"}})
	if ih != mi.InfoHash {
		t.Fatal("wrong infohash")
	}
	if p, _ := e.torrent(ih)["path"].(string); filepath.Base(p) != "tv" || !exists(filepath.Join(e.root, "incoming", "tv")) {
		t.Fatalf("add without path went to %q, want the default path", p)
	}
	e.must(e.do("PUT", "/settings", nil), http.StatusMethodNotAllowed)
}

func TestTorrentControls(t *testing.T) {
	e := newEnv(t, nil)
	raw, _ := newTorrent(t, "ctl", 4, "http://127.0.0.1:1/announce")
	ih := e.add(raw, url.Values{"start": {"false"}, "label": {"linux isos"}, "sequential": {"true"}})
	q := "?infohash=" + ih.String()
	m := e.torrent(ih)
	if m["label"] != "linux isos" || m["sequential"] != true || m["ratio_limit"] != float64(-1) || m["seed_time_limit"] != float64(-1) {
		t.Fatalf("add options: label %v sequential %v ratio_limit %v seed_time_limit %v", m["label"], m["sequential"], m["ratio_limit"], m["seed_time_limit"])
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/setlabel" + q + "&label=tv", 200},
		{"/setsequential" + q + "&value=false", 200},
		{"/setratiolimit" + q + "&ratio=2.5", 200},
		{"/setseedtimelimit" + q + "&minutes=0", 200},
		{"/addtracker" + q + "&url=" + url.QueryEscape("udp://127.0.0.1:2/announce"), 200},
		{"/addtracker" + q + "&url=" + url.QueryEscape("udp://127.0.0.1:2/announce"), 409},
		{"/removetracker" + q + "&url=" + url.QueryEscape("http://127.0.0.1:1/announce"), 200},
		{"/removetracker" + q + "&url=" + url.QueryEscape("http://127.0.0.1:1/announce"), 404},
		{"/addpeer" + q + "&host=127.0.0.1:6999", 200},
		{"/addpeer" + q + "&host=[::1]:7000", 200},
		{"/reannounce" + q, 409}, // stopped
		// Refused input changes nothing.
		{"/setlabel" + q + "&label=" + url.QueryEscape("a\x01b"), 400},
		{"/setlabel" + q, 400},
		{"/setsequential" + q + "&value=yes", 400},
		{"/setratiolimit" + q + "&ratio=-2", 400},
		{"/setratiolimit" + q + "&ratio=NaN", 400},
		{"/setseedtimelimit" + q + "&minutes=1.5", 400},
		{"/addtracker" + q + "&url=" + url.QueryEscape("file:///etc/passwd"), 400},
		{"/addpeer" + q + "&host=example.com:80", 400},
		{"/addpeer" + q + "&host=255.255.255.255:80", 400},
		{"/setlabel?infohash=" + metainfo.Hash{9}.String() + "&label=x", 404},
	} {
		r := e.do("GET", c.path, nil)
		if r.status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.path, r.status, c.status, r.raw)
		}
	}
	m = e.torrent(ih)
	if m["label"] != "tv" || m["sequential"] != false || m["ratio_limit"] != 2.5 || m["seed_time_limit"] != float64(0) {
		t.Fatalf("after the calls: label %v sequential %v ratio_limit %v seed_time_limit %v", m["label"], m["sequential"], m["ratio_limit"], m["seed_time_limit"])
	}
	var trackers []string
	for _, tr := range m["trackers"].([]any) {
		trackers = append(trackers, tr.(map[string]any)["url"].(string))
	}
	if len(trackers) != 1 || trackers[0] != "udp://127.0.0.1:2/announce" {
		t.Fatalf("trackers %v", trackers)
	}
	hosts := map[string]bool{}
	for _, p := range m["Peers"].([]any) {
		hosts[p.(map[string]any)["host"].(string)] = true
	}
	if !hosts["127.0.0.1:6999"] || !hosts["[::1]:7000"] {
		t.Fatalf("added peers not listed: %v", hosts)
	}
	for _, k := range []string{"total_downloaded", "total_uploaded", "ratio", "seeding_seconds", "queue_position", "limit_reached"} {
		if _, ok := m[k]; !ok {
			t.Errorf("torrent JSON lacks %s", k)
		}
	}
	e.must(e.do("GET", "/starttorrent"+q, nil), http.StatusOK)
	e.waitTorrent(ih, "running", func(m map[string]any) bool { return state(m) == "downloading" })
	e.must(e.do("GET", "/reannounce"+q, nil), http.StatusOK)

	// A magnet added with start=false, a label and sequential keeps them.
	body, _ := json.Marshal(map[string]any{"url": "magnet:?xt=urn:btih:" + metainfo.Hash{7}.String(), "start": false,
		"label": "m", "sequential": true})
	r := e.must(e.do("POST", "/addmagnet", body), http.StatusOK)
	mh, _ := metainfo.ParseHash(r.json["infohash"].(string))
	if m := e.torrent(mh); state(m) != "stopped" || m["label"] != "m" || m["sequential"] != true {
		t.Fatalf("magnet options: %v %v %v", state(m), m["label"], m["sequential"])
	}
}

// A private torrent's trackers are its creator's (BEP 27).
func TestPrivateTrackersFixed(t *testing.T) {
	e := newEnv(t, nil)
	folder := makeData(t, t.TempDir(), "priv", 5, 20<<10)
	raw, err := metainfoCreatePrivate(folder)
	if err != nil {
		t.Fatal(err)
	}
	ih := e.add(raw, url.Values{"start": {"false"}})
	e.must(e.do("GET", "/addtracker?infohash="+ih.String()+"&url="+url.QueryEscape("http://127.0.0.1:3/a"), nil), http.StatusConflict)
	os.RemoveAll(folder)
}

func metainfoCreatePrivate(path string) ([]byte, error) {
	return metainfo.Create(path, metainfo.CreateOptions{PieceLength: 16 << 10, Private: true,
		Trackers: [][]string{{"http://127.0.0.1:1/announce"}}})
}

// An API client cannot grow a torrent's tracker list without bound.
func TestTrackersBounded(t *testing.T) {
	e := newEnv(t, nil)
	raw, _ := newTorrent(t, "many-trackers", 6)
	ih := e.add(raw, url.Values{"start": {"false"}})
	q := "/addtracker?infohash=" + ih.String() + "&url="
	for i := range engine.MaxTrackers {
		e.must(e.do("GET", q+url.QueryEscape(fmt.Sprintf("udp://127.0.0.1:%d/a", 1000+i)), nil), http.StatusOK)
	}
	r := e.must(e.do("GET", q+url.QueryEscape("udp://127.0.0.1:9999/a"), nil), http.StatusBadRequest)
	if n := len(e.torrent(ih)["trackers"].([]any)); n != engine.MaxTrackers || r.errMsg() == "" {
		t.Fatalf("%d trackers after one past the bound (%s)", n, r.raw)
	}
}
