package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestMetricsPerTorrentFlag(t *testing.T) {
	if cfg, err := parseServe(nil, io.Discard); err != nil || cfg.MetricsPerTorrent {
		t.Fatalf("default: per-torrent metrics %v, %v; want off", cfg.MetricsPerTorrent, err)
	}
	if cfg, err := parseServe([]string{"-metrics-per-torrent"}, io.Discard); err != nil || !cfg.MetricsPerTorrent {
		t.Fatalf("-metrics-per-torrent: %v, %v", cfg.MetricsPerTorrent, err)
	}
}

// The daemon serves /metrics with each torrent's series under
// -metrics-per-torrent, and /stats with its version and download root.
func TestServeMetricsAndStats(t *testing.T) {
	downloads := t.TempDir()
	raw, mi := makeFolderTorrent(t, downloads, "m", nil, fileSpec{"a.bin", 300 << 10})
	d := startServe(t, t.TempDir(), downloads, freePort(t), "-metrics-per-torrent")
	d.addTorrent(t, "path=", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)

	body, code := d.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, line := range []string{
		`gotorrentserver_torrents{state="seeding"} 1`,
		`gotorrentserver_torrent_progress_ratio{infohash="` + mi.InfoHash.String() + `",name="m"} 1`,
		`gotorrentserver_api_requests_total{code="200",path="/addtorrentfile"} 1`,
	} {
		if !strings.Contains(string(body), "\n"+line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	body, code = d.get("/stats")
	var st struct {
		Torrents     int            `json:"torrents"`
		States       map[string]int `json:"states"`
		Version      string         `json:"version"`
		DownloadRoot string         `json:"download_root"`
		FreeSpace    int64          `json:"free_space"`
	}
	if err := json.Unmarshal(body, &st); code != 200 || err != nil {
		t.Fatalf("/stats: %d %v %s", code, err, body)
	}
	bin, _ := binary()
	out, _ := exec.Command(bin, "version").Output()
	if f := strings.Fields(string(out)); len(f) < 2 || st.Version != f[1] {
		t.Errorf("/stats version %q, `gotorrentserver version` says %q", st.Version, out)
	}
	if st.Torrents != 1 || st.States["seeding"] != 1 || st.DownloadRoot != downloads || st.FreeSpace <= 0 {
		t.Fatalf("/stats: %s (download root %s)", body, downloads)
	}
	d.stop(t)
}
