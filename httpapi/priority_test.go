package httpapi

import (
	"net/http"
	"net/url"
	"testing"

	"gotorrentserver/metainfo"
)

func filePriorities(m map[string]any) []int {
	var out []int
	for _, f := range m["files"].([]any) {
		out = append(out, int(f.(map[string]any)["priority"].(float64)))
	}
	return out
}

func samePriorities(a []int, b ...int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// /setfilepriority changes one file's priority, which /torrentdata shows
// per file; with every file skipped nothing is wanted and the torrent
// seeds (progress 1); wanting one again downloads. Bad requests change
// nothing.
func TestSetFilePriority(t *testing.T) {
	e := newEnv(t, nil)
	raw := makeTorrent(t, makeData(t, t.TempDir(), "prio", 5, 40000, 30000, 20000))
	ih := e.add(raw, url.Values{"path": {""}})
	m := e.waitTorrent(ih, "downloading", func(m map[string]any) bool { return m["state"] == "downloading" })
	if !samePriorities(filePriorities(m), 1, 1, 1) || m["wanted"] != m["size"] {
		t.Fatalf("a fresh torrent: priorities %v, wanted %v of %v", filePriorities(m), m["wanted"], m["size"])
	}
	set := func(file, prio string) resp {
		return e.do("GET", "/setfilepriority?infohash="+ih.String()+"&file="+file+"&priority="+prio, nil)
	}
	r := e.must(set("1", "0"), http.StatusOK)
	if r.json["infohash"] != ih.String() {
		t.Fatalf("answer %s", r.raw)
	}
	m = e.torrent(ih)
	if !samePriorities(filePriorities(m), 1, 0, 1) || m["wanted"].(float64) >= m["size"].(float64) {
		t.Fatalf("after skipping file 1: priorities %v, wanted %v of %v", filePriorities(m), m["wanted"], m["size"])
	}
	e.must(set("2", "2"), http.StatusOK)
	for _, bad := range [][2]string{{"3", "1"}, {"-1", "1"}, {"x", "1"}, {"01", "1"}, {"1", "3"}, {"1", "-1"}, {"1", ""}, {"", "1"}, {"1", "1.0"}} {
		if r := set(bad[0], bad[1]); r.status != http.StatusBadRequest || r.errMsg() == "" {
			t.Fatalf("file %q priority %q: %d %s, want 400", bad[0], bad[1], r.status, r.raw)
		}
	}
	if got := filePriorities(e.torrent(ih)); !samePriorities(got, 1, 0, 2) {
		t.Fatalf("priorities %v after bad requests, want 1 0 2", got)
	}
	e.must(e.do("GET", "/setfilepriority?infohash="+metainfo.Hash{7}.String()+"&file=0&priority=1", nil), http.StatusNotFound)
	e.must(e.do("POST", "/setfilepriority?infohash="+ih.String()+"&file=0&priority=1", nil), http.StatusMethodNotAllowed)

	// Nothing wanted: complete.
	e.must(set("0", "0"), http.StatusOK)
	e.must(set("2", "0"), http.StatusOK)
	m = e.waitTorrent(ih, "seeding with every file skipped", func(m map[string]any) bool { return m["state"] == "seeding" })
	if m["progress"] != 1.0 {
		t.Fatalf("progress %v with nothing wanted, want 1", m["progress"])
	}
	e.must(set("2", "1"), http.StatusOK)
	m = e.waitTorrent(ih, "downloading again", func(m map[string]any) bool { return m["state"] == "downloading" })
	if p := m["progress"].(float64); p != 0 {
		t.Fatalf("progress %v with file 2 wanted and nothing downloaded", p)
	}

	// A magnet without its metadata has no files yet.
	mag := "magnet:?xt=urn:btih:" + metainfo.Hash{9}.String()
	e.must(e.do("POST", "/addmagnet", []byte(`{"url":"`+mag+`"}`)), http.StatusOK)
	r = e.do("GET", "/setfilepriority?infohash="+metainfo.Hash{9}.String()+"&file=0&priority=0", nil)
	if r.status != http.StatusConflict || r.errMsg() == "" {
		t.Fatalf("magnet: %d %s, want 409", r.status, r.raw)
	}
}

// /addtorrentfile takes the priorities at once, one per file.
func TestAddWithPriorities(t *testing.T) {
	e := newEnv(t, nil)
	raw := makeTorrent(t, makeData(t, t.TempDir(), "addprio", 6, 40000, 30000, 20000))
	for _, bad := range []string{"1,1", "1,1,1,1", "1,3,1", "1,,1", "a,b,c"} {
		r := e.do("POST", "/addtorrentfile?"+url.Values{"priorities": {bad}}.Encode(), raw)
		if r.status != http.StatusBadRequest || r.errMsg() == "" {
			t.Fatalf("priorities %q: %d %s, want 400", bad, r.status, r.raw)
		}
	}
	ih := e.add(raw, url.Values{"priorities": {"2,0,1"}})
	if got := filePriorities(e.torrent(ih)); !samePriorities(got, 2, 0, 1) {
		t.Fatalf("priorities %v, want 2 0 1", got)
	}
}
