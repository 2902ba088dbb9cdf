package httpapi

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/metainfo"
)

// seedInRoot writes data into the download root and adds its torrent there,
// waiting until it seeds.
func seedInRoot(t *testing.T, e *env, name string) (metainfo.Hash, string) {
	t.Helper()
	folder := makeData(t, e.root, name, 3, 70<<10, 9000)
	ih := e.add(makeTorrent(t, folder), url.Values{"path": {""}})
	e.waitTorrent(ih, "seeding", func(m map[string]any) bool { return m["state"] == "seeding" })
	return ih, folder
}

// /recheck answers like the other mutating calls; after a file lost its
// second half behind our back, a recheck finds the pieces gone.
func TestRecheckFindsWhatIsThere(t *testing.T) {
	e := newEnv(t, nil)
	ih, folder := seedInRoot(t, e, "rc")
	f0 := filepath.Join(folder, "f0.bin")
	b, _ := os.ReadFile(f0)
	if err := os.Truncate(f0, int64(len(b)/2)); err != nil {
		t.Fatal(err)
	}
	r := e.must(e.do("GET", "/recheck?infohash="+ih.String(), nil), http.StatusOK)
	if r.json["infohash"] != ih.String() {
		t.Fatalf("answer %s", r.raw)
	}
	m := e.waitTorrent(ih, "the recheck to end", func(m map[string]any) bool { return m["state"] == "downloading" })
	if p := m["progress"].(float64); p <= 0 || p >= 1 {
		t.Fatalf("progress %.2f after losing half a file, want between 0 and 1", p)
	}
	if m["rechecks"].(float64) < 2 {
		t.Fatalf("rechecks %v, want the add's and ours", m["rechecks"])
	}
	e.must(e.do("GET", "/recheck?infohash="+metainfo.Hash{9}.String(), nil), http.StatusNotFound)
	e.must(e.do("POST", "/recheck?infohash="+ih.String(), nil), http.StatusMethodNotAllowed)
}

// A stopped torrent keeps its progress and bitfield in the API; /alldata
// says the peer port is fine (listen_error null).
func TestStoppedShowsProgressAndListenErrorNull(t *testing.T) {
	e := newEnv(t, nil)
	ih, _ := seedInRoot(t, e, "st")
	e.must(e.do("GET", "/stoptorrent?infohash="+ih.String(), nil), http.StatusOK)
	m := e.torrent(ih)
	if m["state"] != "stopped" || m["progress"] != 1.0 {
		t.Fatalf("stopped torrent: state %v progress %v", m["state"], m["progress"])
	}
	bf := decodeB64(t, m["bitfield_base64"].(string))
	n := int(m["bitfield_length"].(float64))
	if n == 0 || !bytes.Equal(bf, fullBits(n)) {
		t.Fatalf("bitfield of a stopped complete torrent: %x (%d pieces)", bf, n)
	}
	all := e.must(e.do("GET", "/alldata", nil), http.StatusOK).json
	if v, ok := all["listen_error"]; !ok || v != nil {
		t.Fatalf("listen_error %v (present %v), want null", v, ok)
	}
	// The upload side sits beside the spec's fields.
	up, _ := all["upload"].(map[string]any)
	for _, k := range []string{"slots", "interested", "unchoked", "starved", "saturated", "cache_hits", "cache_misses", "cache_block_reads", "cache_hit_rate"} {
		if _, ok := up[k]; !ok {
			t.Fatalf("/alldata upload %v lacks %q", all["upload"], k)
		}
	}
	msg := "peer port 0.0.0.0:6881: out of file descriptors"
	e.listen.msg.Store(&msg)
	e.do("GET", "/stoptorrent?infohash="+ih.String(), nil) // a change refreshes /alldata
	all = e.must(e.do("GET", "/alldata", nil), http.StatusOK).json
	if all["listen_error"] != "peer port 0.0.0.0:6881: out of file descriptors" {
		t.Fatalf("listen_error %v", all["listen_error"])
	}
}

func fullBits(n int) []byte {
	b := make([]byte, (n+7)/8)
	for i := range n {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return b
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
