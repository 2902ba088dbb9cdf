package httpapi

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio"
	"gotorrentserver/netio/peertest"
)

const testToken = "metrics-test-token"

func withToken(c *Config) { c.Token = testToken }

// scrape fetches /metrics as Prometheus would (bearer token, its Accept
// header) and parses the text format.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.base+"/metrics", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("/metrics: status %d: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		e.t.Fatalf("/metrics: content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// family returns the named family, failing when it is absent or of another type.
func family(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) *dto.MetricFamily {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	if f.GetType() != typ {
		t.Fatalf("%s is a %v, want a %v", name, f.GetType(), typ)
	}
	return f
}

// sample is the value of the series of f whose labels include want; ok is
// false when there is none.
func sample(f *dto.MetricFamily, want map[string]string) (float64, bool) {
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// value is sample of a series that must exist.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, labels map[string]string) float64 {
	t.Helper()
	v, ok := sample(family(t, fams, name, typ), labels)
	if !ok {
		t.Fatalf("%s has no series %v", name, labels)
	}
	return v
}

func TestMetricsFamilies(t *testing.T) {
	e := newEnv(t, withToken)
	torrent, _ := newTorrent(t, "m", 1)
	e.add(torrent, url.Values{"start": {"false"}})
	fams := e.scrape()
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	for st := range engine.State(engine.NumStates) {
		want := 0.0
		if st == engine.StateStopped {
			want = 1
		}
		if v := value(t, fams, "gotorrentserver_torrents", gauge, map[string]string{"state": st.String()}); v != want {
			t.Errorf("torrents{state=%q} = %v, want %v", st, v, want)
		}
	}
	for name, typ := range map[string]dto.MetricType{
		"gotorrentserver_peers_connected":                gauge,
		"gotorrentserver_downloaded_bytes_total":         counter,
		"gotorrentserver_uploaded_bytes_total":           counter,
		"gotorrentserver_wasted_bytes_total":             counter,
		"gotorrentserver_download_rate_bytes_per_second": gauge,
		"gotorrentserver_upload_rate_bytes_per_second":   gauge,
		"gotorrentserver_disk_queue_depth":               gauge,
		"gotorrentserver_disk_workers_busy":              gauge,
		"gotorrentserver_hash_queue_depth":               gauge,
		"gotorrentserver_hash_workers_busy":              gauge,
		"gotorrentserver_cache_hits_total":               counter,
		"gotorrentserver_cache_misses_total":             counter,
		"gotorrentserver_cache_block_reads_total":        counter,
		"gotorrentserver_cache_bytes":                    gauge,
		"gotorrentserver_cache_limit_bytes":              gauge,
		"gotorrentserver_hash_failures_total":            counter,
		"gotorrentserver_banned_peers":                   gauge,
		"gotorrentserver_api_requests_total":             counter,
		// The Go and process collectors.
		"go_goroutines":                 gauge,
		"go_memstats_heap_alloc_bytes":  gauge,
		"process_resident_memory_bytes": gauge,
		"process_cpu_seconds_total":     counter,
		"process_open_fds":              gauge,
	} {
		family(t, fams, name, typ)
	}
	if v := value(t, fams, "gotorrentserver_cache_limit_bytes", gauge, nil); v <= 0 {
		t.Errorf("cache limit %v", v)
	}
	if v := value(t, fams, "process_resident_memory_bytes", gauge, nil); v <= 0 {
		t.Errorf("resident memory %v", v)
	}
	// Without a DHT there is no DHT figure to show.
	if fams["gotorrentserver_dht_nodes"] != nil {
		t.Error("dht_nodes shown without a DHT")
	}
	// Per-torrent series are off by default.
	for name := range fams {
		if strings.HasPrefix(name, "gotorrentserver_torrent_") {
			t.Errorf("%s shown without MetricsPerTorrent", name)
		}
	}
}

func TestMetricsCountsRequests(t *testing.T) {
	e := newEnv(t, withToken)
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
	e.must(e.do("GET", "/alldata", nil), http.StatusOK)
	e.must(e.do("GET", "/torrentdata?infohash="+strings.Repeat("ab", 20), nil), http.StatusNotFound)
	for i := range 20 { // a scanner's paths all land under "other"
		e.must(e.do("GET", fmt.Sprintf("/wp-admin/%d.php", i), nil), http.StatusNotFound)
	}
	e.must(e.do("POST", "/alldata", nil), http.StatusMethodNotAllowed)
	e.must(e.doAuth("GET", "/stats", nil, "Bearer wrong"), http.StatusUnauthorized)
	fams := e.scrape()
	counter := dto.MetricType_COUNTER
	for _, c := range []struct {
		path, code string
		n          float64
	}{
		{"/alldata", "200", 2},
		{"/torrentdata", "404", 1},
		{"other", "404", 20},
		{"/alldata", "405", 1},
		{"/stats", "401", 1},
	} {
		if v := value(t, fams, "gotorrentserver_api_requests_total", counter, map[string]string{"path": c.path, "code": c.code}); v != c.n {
			t.Errorf("api_requests_total{path=%q,code=%q} = %v, want %v", c.path, c.code, v, c.n)
		}
	}
	for _, m := range fams["gotorrentserver_api_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "path" && strings.HasPrefix(l.GetValue(), "/wp-admin") {
				t.Errorf("unknown path %q got its own series", l.GetValue())
			}
		}
	}
	// The scrape itself shows at the next one.
	fams = e.scrape()
	if v := value(t, fams, "gotorrentserver_api_requests_total", counter, map[string]string{"path": "/metrics", "code": "200"}); v < 1 {
		t.Errorf("scrapes counted %v", v)
	}
}

func TestMetricsNeedsToken(t *testing.T) {
	e := newEnv(t, withToken)
	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r := e.send(req)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("/metrics with %q: status %d, want 401: %s", auth, r.status, r.raw)
		}
		if strings.Contains(string(r.raw), "gotorrentserver_") {
			t.Fatal("a refused scrape carries metrics")
		}
	}
}

// A torrent's name is whatever its creator wrote; a name that is not UTF-8
// must not break the scrape.
func TestMetricsPerTorrent(t *testing.T) {
	e := newEnv(t, func(c *Config) { withToken(c); c.MetricsPerTorrent = true })
	torrent, mi := newTorrent(t, "bad\xffname", 2)
	if utf8.ValidString(mi.Name) {
		t.Fatalf("name %q is UTF-8: the test needs one that is not", mi.Name)
	}
	ih := e.add(torrent, url.Values{"start": {"false"}})
	fams := e.scrape()
	labels := map[string]string{"infohash": ih.String(), "name": strings.ToValidUTF8(mi.Name, "\uFFFD")}
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	for name, typ := range map[string]dto.MetricType{
		"gotorrentserver_torrent_downloaded_bytes_total":         counter,
		"gotorrentserver_torrent_uploaded_bytes_total":           counter,
		"gotorrentserver_torrent_download_rate_bytes_per_second": gauge,
		"gotorrentserver_torrent_upload_rate_bytes_per_second":   gauge,
		"gotorrentserver_torrent_peers":                          gauge,
		"gotorrentserver_torrent_progress_ratio":                 gauge,
	} {
		if v := value(t, fams, name, typ, labels); v != 0 {
			t.Errorf("%s = %v for a torrent without data, want 0", name, v)
		}
	}
}

func TestStatsAnswer(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, func(c *Config) {
		withToken(c)
		c.Version = "1.2.3"
		c.Started = started
		c.Now = func() time.Time { return started.Add(90 * time.Second) }
	})
	for i := range 3 {
		torrent, _ := newTorrent(t, fmt.Sprint("s", i), uint64(10+i))
		e.add(torrent, url.Values{"start": {"false"}})
	}
	r := e.must(e.do("GET", "/stats", nil), http.StatusOK).json
	for _, f := range []string{"downloaded", "uploaded", "downrate", "uprate", "peers", "torrents", "states",
		"free_space", "download_root", "uptime_seconds", "version", "started"} {
		if _, ok := r[f]; !ok {
			t.Errorf("/stats lacks %q: %v", f, r)
		}
	}
	states, _ := r["states"].(map[string]any)
	sum := 0.0
	for st := range engine.State(engine.NumStates) {
		n, ok := states[st.String()].(float64)
		if !ok {
			t.Errorf("states lacks %q: %v", st, states)
		}
		sum += n
	}
	if len(states) != engine.NumStates || sum != 3 || r["torrents"] != 3.0 || states["stopped"] != 3.0 {
		t.Errorf("states %v sum to %v, torrents %v: want 3 stopped", states, sum, r["torrents"])
	}
	if fs, _ := r["free_space"].(float64); fs <= 0 || fs != math.Trunc(fs) {
		t.Errorf("free_space %v", r["free_space"])
	}
	if r["download_root"] != e.root || r["version"] != "1.2.3" || r["uptime_seconds"] != 90.0 ||
		r["started"] != "2026-01-02T03:04:05Z" {
		t.Errorf("download_root %v (want %s), version %v, uptime %v, started %v", r["download_root"], e.root,
			r["version"], r["uptime_seconds"], r["started"])
	}
	if r["downloaded"] != 0.0 || r["peers"] != 0.0 {
		t.Errorf("downloaded %v, peers %v with nothing transferred", r["downloaded"], r["peers"])
	}
}

func TestStatsVersionDefault(t *testing.T) {
	e := newEnv(t, withToken)
	if v := e.must(e.do("GET", "/stats", nil), http.StatusOK).json["version"]; v != "dev" {
		t.Fatalf("version %v, want dev", v)
	}
}

// newNetEnv is newEnv over a client with a real network layer on
// 127.0.0.1, so the API's torrents can download from real peers.
func newNetEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	srv, err := netio.Listen(netio.Config{ListenAddr: "127.0.0.1:0", DialTimeout: 3 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.Config{PeerID: wire.NewPeerID(rand.Reader), Logf: t.Logf,
		ListenPort: srv.Port(), Dialer: srv, Listener: srv}
	if u := srv.UDP(); u != nil {
		ecfg.Tracker.Socket = u
	}
	c := engine.New(ecfg)
	if err := srv.Serve(c); err != nil {
		srv.Stop()
		c.Close()
		srv.UDP().Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the API's own cleanup, registered below
		srv.Stop()
		c.Close()
		srv.UDP().Close()
	})
	e := newEnv(t, func(cfg *Config) {
		cfg.Client = c
		if mod != nil {
			mod(cfg)
		}
	})
	e.client = c
	return e
}

// After a real download from a libtorrent seed, the counters show at least
// the torrent's bytes, in total and for the torrent, and /stats agrees.
func TestMetricsAfterDownloadFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	data := makeData(t, t.TempDir(), "lt-metrics", 5, 3<<20+123, 1<<20+7)
	b, err := metainfo.Create(data, metainfo.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tpath := filepath.Join(t.TempDir(), "lt-metrics.torrent")
	if err := os.WriteFile(tpath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	e := newNetEnv(t, func(c *Config) { withToken(c); c.MetricsPerTorrent = true })
	ih := e.add(b, url.Values{"path": {"dl"}})
	e.client.Session(ih).AddPeers([]netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(seed.Port))}, "test")
	deadline := time.Now().Add(120 * time.Second)
	for e.torrent(ih)["state"] != "seeding" {
		if time.Now().After(deadline) {
			t.Fatalf("not seeding after 120 s: %v", e.torrent(ih))
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := os.ReadFile(filepath.Join(e.root, "dl", "lt-metrics", "f0.bin"))
	if err != nil || len(got) != 3<<20+123 {
		t.Fatalf("downloaded file: %d bytes, %v", len(got), err)
	}
	size := float64(mi.TotalLength)
	fams := e.scrape()
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	if v := value(t, fams, "gotorrentserver_downloaded_bytes_total", counter, nil); v < size {
		t.Errorf("downloaded_bytes_total %v, want at least the torrent's %v", v, size)
	}
	if v := value(t, fams, "gotorrentserver_torrents", gauge, map[string]string{"state": "seeding"}); v != 1 {
		t.Errorf("torrents{state=seeding} %v", v)
	}
	labels := map[string]string{"infohash": ih.String(), "name": "lt-metrics"}
	if v := value(t, fams, "gotorrentserver_torrent_downloaded_bytes_total", counter, labels); v < size {
		t.Errorf("torrent_downloaded_bytes_total %v, want at least %v", v, size)
	}
	if v := value(t, fams, "gotorrentserver_torrent_progress_ratio", gauge, labels); v != 1 {
		t.Errorf("torrent_progress_ratio %v", v)
	}
	if v := value(t, fams, "gotorrentserver_hash_workers_busy", gauge, nil); v < 0 {
		t.Errorf("hash workers busy %v", v)
	}
	st := e.must(e.do("GET", "/stats", nil), http.StatusOK).json
	if d, _ := st["downloaded"].(float64); d < size {
		t.Errorf("/stats downloaded %v, want at least %v", st["downloaded"], size)
	}
	if st["torrents"] != 1.0 || st["states"].(map[string]any)["seeding"] != 1.0 {
		t.Errorf("/stats torrents %v states %v", st["torrents"], st["states"])
	}
	// Removing the torrent leaves the counter where it was: a Prometheus
	// counter that fell would read as a restart.
	e.must(e.do("GET", "/removetorrent?infohash="+ih.String(), nil), http.StatusOK)
	fams = e.scrape()
	if v := value(t, fams, "gotorrentserver_downloaded_bytes_total", counter, nil); v < size {
		t.Errorf("downloaded_bytes_total %v after removal, want at least %v", v, size)
	}
	if f := fams["gotorrentserver_torrent_progress_ratio"]; f != nil {
		if _, ok := sample(f, labels); ok {
			t.Error("a removed torrent still has its series")
		}
	}
}
