package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// The seed API spec's keys, byte for byte.
var (
	specTopKeys     = []string{"time", "sessions"}
	specSessionKeys = []string{"name", "infohash_base64", "bitfield_base64", "bitfield_length", "timestarted",
		"wasted", "downloaded", "uploaded", "error", "trackers", "Peers"}
	specTrackerKeys = []string{"url", "status", "leechers", "seeders", "peers", "lastannounce"}
	specPeerKeys    = []string{"ID", "host", "bitfield_base64", "bitfield_length", "downrate", "uprate",
		"downloaded", "uploaded", "connected", "relevence"}
	extraSessionKeys = []string{"infohash", "state", "progress", "size", "path", "downrate", "uprate",
		"maxdown", "maxup", "files", "added"}
)

func hasKeys(t *testing.T, where string, m map[string]any, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: key %q missing (have %v)", where, k, slices.Sorted(maps.Keys(m)))
		}
	}
}

// fakeTracker answers every announce with 3 seeders, 2 leechers and one
// compact peer, 127.0.0.1:9 (never dialed: the engine has no network layer).
func fakeTracker(t *testing.T) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("d8:completei3e10:incompletei2e8:intervali1800e5:peers6:\x7f\x00\x00\x01\x00\x09e"))
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/announce"
}

func TestAllDataSpecFields(t *testing.T) {
	e := newEnv(t, nil)
	trk := fakeTracker(t)
	tor, mi := newTorrent(t, "alpha", 1, trk)
	ih := e.add(tor, nil)
	if ih != mi.InfoHash {
		t.Fatalf("answered infohash %s, want %s", ih, mi.InfoHash)
	}
	e.client.Session(ih).AddPeers([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7")}, "test")

	var all map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		all = e.must(e.do("GET", "/alldata", nil), http.StatusOK).json
		s := all["sessions"].([]any)[0].(map[string]any)
		trs, _ := s["trackers"].([]any)
		peers, _ := s["Peers"].([]any)
		if len(peers) == 2 && len(trs) == 1 && trs[0].(map[string]any)["status"] == "working" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tracker answer and two known peers in time: %v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hasKeys(t, "top", all, specTopKeys)
	if _, err := time.Parse(time.RFC3339, all["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
	sessions := all["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(sessions))
	}
	s := sessions[0].(map[string]any)
	hasKeys(t, "session", s, specSessionKeys)
	hasKeys(t, "session extras", s, extraSessionKeys)

	raw, _ := base64.StdEncoding.DecodeString(s["infohash_base64"].(string))
	if string(raw) != string(mi.InfoHash[:]) {
		t.Errorf("infohash_base64 decodes to %x, want %s", raw, mi.InfoHash)
	}
	if s["infohash"] != mi.InfoHash.String() || s["name"] != "alpha" || s["state"] != "downloading" {
		t.Errorf("infohash/name/state = %v/%v/%v", s["infohash"], s["name"], s["state"])
	}
	if s["bitfield_length"] != float64(mi.NumPieces()) || s["size"] != float64(mi.TotalLength) {
		t.Errorf("bitfield_length %v size %v, want %d %d", s["bitfield_length"], s["size"], mi.NumPieces(), mi.TotalLength)
	}
	bf, _ := base64.StdEncoding.DecodeString(s["bitfield_base64"].(string))
	if len(bf) != (mi.NumPieces()+7)/8 {
		t.Errorf("bitfield is %d bytes for %d pieces", len(bf), mi.NumPieces())
	}
	if _, err := time.Parse(time.RFC3339, s["timestarted"].(string)); err != nil {
		t.Errorf("timestarted: %v", err)
	}
	if s["error"] != nil || s["progress"] != float64(0) {
		t.Errorf("error %v progress %v, want null and 0", s["error"], s["progress"])
	}
	if s["path"] != e.srv.root.real {
		t.Errorf("path %v, want the download root %s", s["path"], e.srv.root.real)
	}
	if files := s["files"].([]any); len(files) != 2 {
		t.Errorf("files: %v", files)
	}

	tr := s["trackers"].([]any)[0].(map[string]any)
	hasKeys(t, "tracker", tr, specTrackerKeys)
	if tr["url"] != trk || tr["seeders"] != float64(3) || tr["leechers"] != float64(2) || tr["peers"] != float64(1) {
		t.Errorf("tracker: %v", tr)
	}
	if _, err := time.Parse(time.RFC3339, tr["lastannounce"].(string)); err != nil {
		t.Errorf("lastannounce: %v", err)
	}

	var hosts []string
	for _, p := range s["Peers"].([]any) {
		pm := p.(map[string]any)
		hasKeys(t, "peer", pm, specPeerKeys)
		hosts = append(hosts, pm["host"].(string))
		if pm["connected"] != false || pm["ID"] != "" || pm["bitfield_length"] != float64(0) {
			t.Errorf("never-connected peer: %v", pm)
		}
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, []string{"127.0.0.1:7", "127.0.0.1:9"}) {
		t.Errorf("peer hosts %v", hosts)
	}

	// /torrentdata is the same object.
	one := e.torrent(ih)
	hasKeys(t, "torrentdata", one, specSessionKeys)
	hasKeys(t, "torrentdata extras", one, extraSessionKeys)
	hasKeys(t, "torrentdata tracker", one["trackers"].([]any)[0].(map[string]any), specTrackerKeys)
	hasKeys(t, "torrentdata peer", one["Peers"].([]any)[0].(map[string]any), specPeerKeys)
}

func TestAllDataEmptyAndOrdered(t *testing.T) {
	e := newEnv(t, nil)
	all := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json
	if s, ok := all["sessions"].([]any); !ok || len(s) != 0 {
		t.Fatalf("sessions of an empty client: %#v (want [])", all["sessions"])
	}
	var want []string
	for i := range 3 {
		tor, _ := newTorrent(t, "t", uint64(10+i))
		want = append(want, e.add(tor, url.Values{"start": {"false"}}).String())
		time.Sleep(5 * time.Millisecond) // distinct Added times
	}
	for range 3 {
		var got []string
		for _, s := range e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any) {
			sm := s.(map[string]any)
			got = append(got, sm["infohash"].(string))
			if sm["timestarted"] != nil || sm["state"] != "stopped" {
				t.Errorf("never started torrent: timestarted %v state %v", sm["timestarted"], sm["state"])
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("order %v, want oldest first %v", got, want)
		}
	}
}

func TestAddOptions(t *testing.T) {
	e := newEnv(t, nil)
	tor, mi := newTorrent(t, "opts", 2)
	ih := e.add(tor, url.Values{"path": {"sub/dir"}, "start": {"false"}, "maxdown": {"100"}, "maxup": {"50"}})
	m := e.torrent(ih)
	want := filepath.Join(e.srv.root.real, "sub", "dir")
	if m["path"] != want || m["state"] != "stopped" || m["maxdown"] != float64(100) || m["maxup"] != float64(50) {
		t.Errorf("path %v state %v maxdown %v maxup %v; want %s stopped 100 50", m["path"], m["state"], m["maxdown"], m["maxup"], want)
	}
	if st, err := os.Stat(want); err != nil || !st.IsDir() {
		t.Errorf("folder not created: %v", err)
	}
	if got := e.changed(); !slices.Equal(got, []metainfo.Hash{mi.InfoHash}) {
		t.Errorf("OnChange calls %v", got)
	}

	// Absolute inside the root is fine too, and start defaults to true.
	tor2, _ := newTorrent(t, "opts2", 3)
	ih2 := e.add(tor2, url.Values{"path": {filepath.Join(e.root, "abs")}})
	// Start is asynchronous: the add answers before the session runs, and
	// it checks the (absent) data before it downloads.
	m = e.waitTorrent(ih2, "started", func(m map[string]any) bool { return m["state"] != "stopped" && m["state"] != "checking" })
	if m["path"] != filepath.Join(e.srv.root.real, "abs") || m["state"] != "downloading" || m["maxdown"] != float64(0) {
		t.Errorf("second torrent: path %v state %v maxdown %v", m["path"], m["state"], m["maxdown"])
	}
}

func TestStartStop(t *testing.T) {
	e := newEnv(t, nil)
	tor, _ := newTorrent(t, "ss", 4)
	ih := e.add(tor, url.Values{"start": {"false"}})
	q := "?infohash=" + ih.String()
	e.must(e.do("GET", "/starttorrent"+q, nil), http.StatusOK)
	e.waitTorrent(ih, "downloading", func(m map[string]any) bool { return m["state"] == "downloading" && m["timestarted"] != nil })
	r := e.must(e.do("GET", "/stoptorrent"+q, nil), http.StatusOK)
	if r.json["infohash"] != ih.String() {
		t.Errorf("stop answered %s", r.raw)
	}
	// Stop waits for the session, so the very next read shows it.
	if m := e.torrent(ih); m["state"] != "stopped" {
		t.Errorf("after stop: state %v", m["state"])
	}
	if n := len(e.changed()); n != 3 {
		t.Errorf("%d OnChange calls, want 3 (add, start, stop)", n)
	}
}

func TestSetRates(t *testing.T) {
	e := newEnv(t, nil)
	tor, _ := newTorrent(t, "rates", 5)
	ih := e.add(tor, url.Values{"maxup": {"7"}})
	q := "?infohash=" + ih.String()
	e.must(e.do("GET", "/setdownrate"+q+"&rate=64", nil), http.StatusOK)
	e.waitTorrent(ih, "maxdown 64", func(m map[string]any) bool { return m["maxdown"] == float64(64) })
	if m := e.torrent(ih); m["maxup"] != float64(7) {
		t.Errorf("setdownrate changed maxup to %v", m["maxup"])
	}
	e.must(e.do("GET", "/setuprate"+q+"&rate=2048", nil), http.StatusOK)
	e.waitTorrent(ih, "maxup 2048", func(m map[string]any) bool { return m["maxup"] == float64(2048) })
	e.must(e.do("GET", "/setdownrate"+q+"&rate=0", nil), http.StatusOK)
	e.waitTorrent(ih, "maxdown unlimited", func(m map[string]any) bool { return m["maxdown"] == float64(0) })
	if m := e.torrent(ih); m["maxup"] != float64(2048) {
		t.Errorf("maxup %v after setting down", m["maxup"])
	}
}

func TestDuplicateAdd(t *testing.T) {
	e := newEnv(t, nil)
	tor, _ := newTorrent(t, "dup", 6)
	ih := e.add(tor, url.Values{"path": {"first"}, "maxdown": {"10"}, "start": {"false"}})
	r := e.must(e.do("POST", "/addtorrentfile?path=second&maxdown=99&start=true", tor), http.StatusConflict)
	if r.errMsg() == "" {
		t.Errorf("409 without message: %s", r.raw)
	}
	m := e.torrent(ih)
	if m["maxdown"] != float64(10) || m["state"] != "stopped" || m["path"] != filepath.Join(e.srv.root.real, "first") {
		t.Errorf("existing torrent touched: %v", m)
	}
	if exists(filepath.Join(e.root, "second")) {
		t.Error("refused add still created its folder")
	}
	if n := len(e.changed()); n != 1 {
		t.Errorf("%d OnChange calls, want 1", n)
	}
}

func TestRemove(t *testing.T) {
	e := newEnv(t, nil)
	// Data already in the root: the engine rechecks it and seeds.
	a := makeTorrent(t, makeData(t, e.root, "a", 20, 30<<10, 100))
	b := makeTorrent(t, makeData(t, e.root, "b", 21, 20<<10))
	keep := filepath.Join(e.root, "a", "notes.txt") // not part of torrent a
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	iha, ihb := e.add(a, nil), e.add(b, nil)
	for _, ih := range []metainfo.Hash{iha, ihb} {
		e.waitTorrent(ih, "seeding", func(m map[string]any) bool { return m["state"] == "seeding" && m["progress"] == float64(1) })
	}
	e.must(e.do("GET", "/removetorrent?delete=true&infohash="+iha.String(), nil), http.StatusOK)
	for _, p := range []string{"a/f0.bin", "a/f1.bin"} {
		if exists(filepath.Join(e.root, p)) {
			t.Errorf("%s survived delete=true", p)
		}
	}
	if !exists(keep) || !exists(filepath.Join(e.root, "b", "f0.bin")) {
		t.Error("delete=true removed files that are not the torrent's")
	}
	e.must(e.do("GET", "/torrentdata?infohash="+iha.String(), nil), http.StatusNotFound)
	e.must(e.do("GET", "/removetorrent?infohash="+iha.String(), nil), http.StatusNotFound)

	// delete absent means false: the data stays.
	e.must(e.do("GET", "/removetorrent?infohash="+ihb.String(), nil), http.StatusOK)
	if !exists(filepath.Join(e.root, "b", "f0.bin")) {
		t.Error("remove without delete deleted data")
	}
	if s := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json["sessions"].([]any); len(s) != 0 {
		t.Errorf("%d sessions left", len(s))
	}
	if got := e.changed(); len(got) != 4 || got[2] != iha || got[3] != ihb {
		t.Errorf("OnChange calls %v", got)
	}
}

func TestAddMagnet(t *testing.T) {
	e := newEnv(t, nil)
	mag := "magnet:?xt=urn:btih:" + "0123456789abcdef0123456789abcdef01234567" + "&dn=x"
	r := e.must(e.do("POST", "/addmagnet", []byte(`{"url":"`+mag+`","targetdir":"mags","maxdown":5,"maxup":0}`)), http.StatusOK)
	var got map[string]string
	json.Unmarshal(r.raw, &got)
	if got["infohash"] != "0123456789abcdef0123456789abcdef01234567" {
		t.Fatalf("addmagnet answered %s", r.raw)
	}
	if !exists(filepath.Join(e.root, "mags")) {
		t.Error("the magnet's folder was not created")
	}
	// The session appears at once, named by dn, fetching metadata.
	td := e.must(e.do("GET", "/torrentdata?infohash=0123456789abcdef0123456789abcdef01234567", nil), http.StatusOK)
	var sess map[string]any
	json.Unmarshal(td.raw, &sess)
	if sess["name"] != "x" || sess["state"] != "metadata" || sess["maxdown"] != float64(5) {
		t.Fatalf("magnet session: name %v state %v maxdown %v", sess["name"], sess["state"], sess["maxdown"])
	}
	e.must(e.do("POST", "/addmagnet", []byte(`{"url":"`+mag+`"}`)), http.StatusConflict)
	for _, body := range []string{
		``, `{`, `[]`, `{"url":1}`, `{"url":""}`, `{"url":"http://x"}`,
		`{"url":"magnet:?xt=urn:btih:zz"}`, `{"url":"` + mag + `","maxdown":-1}`,
		`{"url":"` + mag + `","maxup":1.5}`, `{"url":"` + mag + `","targetdir":"../up"}`,
		`{"url":"` + mag + `","bogus":1}`, `{"url":"` + mag + `"} {}`,
	} {
		if r := e.do("POST", "/addmagnet", []byte(body)); r.status != http.StatusBadRequest || r.errMsg() == "" {
			t.Errorf("body %q: %d %s, want 400 with a message", body, r.status, r.raw)
		}
	}
	// A magnet of a torrent we already have is a conflict.
	tor, mi := newTorrent(t, "known", 7)
	e.add(tor, url.Values{"start": {"false"}})
	e.must(e.do("POST", "/addmagnet", []byte(`{"url":"magnet:?xt=urn:btih:`+mi.InfoHash.String()+`"}`)), http.StatusConflict)
	if n := len(e.changed()); n != 2 {
		t.Errorf("%d OnChange calls, want 2 (magnet, torrent)", n)
	}
}
