package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

// /metrics is the Prometheus exposition of the client (engine.Client.Stats),
// the API's own requests, and the Go runtime and process. The collectors
// read the client at scrape time: nothing runs between scrapes. A Server's
// registry is its own, so servers in one process (tests) do not collide.

const metricsNS = "gotorrentserver"

// otherPath labels requests to a path the API does not have, so a scanner
// cannot grow api_requests_total by a series per path it tries.
const otherPath = "other"

func metricDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricsNS+"_"+name, help, labels, nil)
}

var (
	descTorrents   = metricDesc("torrents", "Torrents by state.", "state")
	descPeers      = metricDesc("peers_connected", "Peer connections attached to torrents.")
	descDownloaded = metricDesc("downloaded_bytes_total", "Payload bytes downloaded over all torrents, those removed while the daemon runs included.")
	descUploaded   = metricDesc("uploaded_bytes_total", "Payload bytes uploaded over all torrents, those removed while the daemon runs included.")
	descWasted     = metricDesc("wasted_bytes_total", "Payload bytes downloaded and thrown away (duplicates, failed hashes) over all torrents.")
	descDownRate   = metricDesc("download_rate_bytes_per_second", "Payload download rate over all torrents, averaged over 5 s.")
	descUpRate     = metricDesc("upload_rate_bytes_per_second", "Payload upload rate over all torrents, averaged over 5 s.")
	descDiskQueue  = metricDesc("disk_queue_depth", "Jobs waiting for a worker of the disk lane.")
	descDiskBusy   = metricDesc("disk_workers_busy", "Workers of the disk lane running a job.")
	descHashQueue  = metricDesc("hash_queue_depth", "Jobs waiting for a worker of the hash lane.")
	descHashBusy   = metricDesc("hash_workers_busy", "Workers of the hash lane running a job.")
	descCacheHits  = metricDesc("cache_hits_total", "Blocks the read cache served from memory.")
	descCacheMiss  = metricDesc("cache_misses_total", "Disk reads the read cache performed.")
	descCacheBlk   = metricDesc("cache_block_reads_total", "Of the cache's disk reads, those of a block alone while the cache thrashed.")
	descCacheBytes = metricDesc("cache_bytes", "Bytes of piece data the read cache holds.")
	descCacheLimit = metricDesc("cache_limit_bytes", "The read cache's size limit.")
	descHashFail   = metricDesc("hash_failures_total", "Pieces that failed their hash check.")
	descBans       = metricDesc("banned_peers", "Peer addresses banned now.")
	descDHTNodes   = metricDesc("dht_nodes", "Nodes in the DHT routing table (only with the DHT on).")

	torrentLabels       = []string{"infohash", "name"}
	descTorrentDown     = metricDesc("torrent_downloaded_bytes_total", "Payload bytes the torrent downloaded.", torrentLabels...)
	descTorrentUp       = metricDesc("torrent_uploaded_bytes_total", "Payload bytes the torrent uploaded.", torrentLabels...)
	descTorrentDownRate = metricDesc("torrent_download_rate_bytes_per_second", "The torrent's payload download rate, averaged over 5 s.", torrentLabels...)
	descTorrentUpRate   = metricDesc("torrent_upload_rate_bytes_per_second", "The torrent's payload upload rate, averaged over 5 s.", torrentLabels...)
	descTorrentPeers    = metricDesc("torrent_peers", "The torrent's connected peers.", torrentLabels...)
	descTorrentProgress = metricDesc("torrent_progress_ratio", "The torrent's verified share, 0 to 1.", torrentLabels...)
)

// constMetric is prometheus.MustNewConstMetric without the panic: a value
// the library refuses fails that series in the scrape (Gather reports it),
// never the collecting goroutine.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// clientCollector reads the client's totals once per scrape. Safe for
// concurrent use, as Client.Stats is.
type clientCollector struct{ c *engine.Client }

func (cc clientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTorrents, descPeers, descDownloaded, descUploaded, descWasted,
		descDownRate, descUpRate, descDiskQueue, descDiskBusy, descHashQueue, descHashBusy, descCacheHits,
		descCacheMiss, descCacheBlk, descCacheBytes, descCacheLimit, descHashFail, descBans, descDHTNodes} {
		ch <- d
	}
}

func (cc clientCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- constMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- constMetric(d, prometheus.CounterValue, v)
	}
	for state, n := range st.States {
		gauge(descTorrents, float64(n), engine.State(state).String())
	}
	gauge(descPeers, float64(st.Peers))
	counter(descDownloaded, float64(st.Downloaded))
	counter(descUploaded, float64(st.Uploaded))
	counter(descWasted, float64(st.Wasted))
	gauge(descDownRate, float64(st.DownRate))
	gauge(descUpRate, float64(st.UpRate))
	gauge(descDiskQueue, float64(st.Disk.Queued))
	gauge(descDiskBusy, float64(st.Disk.Busy))
	gauge(descHashQueue, float64(st.Hash.Queued))
	gauge(descHashBusy, float64(st.Hash.Busy))
	counter(descCacheHits, float64(st.Cache.Hits))
	counter(descCacheMiss, float64(st.Cache.Misses))
	counter(descCacheBlk, float64(st.Cache.Blocks))
	gauge(descCacheBytes, float64(st.Cache.Bytes))
	gauge(descCacheLimit, float64(st.Cache.Limit))
	counter(descHashFail, float64(st.HashFailures))
	gauge(descBans, float64(st.Bans))
	if st.DHT {
		gauge(descDHTNodes, float64(st.DHTNodes))
	}
}

// torrentCollector gives each torrent its own series (Config.MetricsPerTorrent):
// six per torrent, so 60,000 for 10,000 torrents, which is why it is off by
// default. Safe for concurrent use: it reads published snapshots.
type torrentCollector struct{ c *engine.Client }

func (tc torrentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTorrentDown, descTorrentUp, descTorrentDownRate, descTorrentUpRate,
		descTorrentPeers, descTorrentProgress} {
		ch <- d
	}
}

func (tc torrentCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range tc.c.Sessions() {
		sn := s.Snapshot()
		if sn == nil {
			continue
		}
		// A label value must be UTF-8, and a torrent's name is whatever
		// its creator wrote: one bad name would fail the whole scrape.
		labels := []string{sn.InfoHash.String(), strings.ToValidUTF8(sn.Name, "\uFFFD")}
		peers := 0
		for i := range sn.Peers {
			if sn.Peers[i].Connected {
				peers++
			}
		}
		down, up, _ := sn.TransferTotals()
		ch <- constMetric(descTorrentDown, prometheus.CounterValue, float64(down), labels...)
		ch <- constMetric(descTorrentUp, prometheus.CounterValue, float64(up), labels...)
		ch <- constMetric(descTorrentDownRate, prometheus.GaugeValue, float64(sn.DownRate), labels...)
		ch <- constMetric(descTorrentUpRate, prometheus.GaugeValue, float64(sn.UpRate), labels...)
		ch <- constMetric(descTorrentPeers, prometheus.GaugeValue, float64(peers), labels...)
		ch <- constMetric(descTorrentProgress, prometheus.GaugeValue, sn.Progress(), labels...)
	}
}

// metrics is a Server's registry and the API's own counter.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
}

func newMetrics(cfg Config) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNS, Name: "api_requests_total",
			Help: "API answers by path (\"other\" for unknown paths) and status code.",
		}, []string{"path", "code"}),
	}
	m.reg.MustRegister(m.requests, clientCollector{cfg.Client},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.MetricsPerTorrent {
		m.reg.MustRegister(torrentCollector{cfg.Client})
	}
	return m
}

// count records one answer; path is the request's, code the status sent.
func (m *metrics) count(path []byte, code int) {
	p := otherPath
	if _, ok := routes[string(path)]; ok {
		p = string(path)
	} else if _, ok := publicRoutes[string(path)]; ok {
		p = string(path)
	} else if isUIPath(path) {
		p = uiPrefix // one series for the dashboard's files
	}
	m.requests.WithLabelValues(p, strconv.Itoa(code)).Inc()
}

// rawBody is an already encoded answer that is not JSON.
type rawBody struct {
	contentType string
	body        []byte
}

// metricsPage answers /metrics in the format the scraper asks for (Accept),
// the text format when it names none.
func (s *Server) metricsPage(ctx *fasthttp.RequestCtx) (any, error) {
	families, err := s.metrics.reg.Gather()
	if err != nil {
		// Gather still returns what it could: a scrape with most series
		// beats a 500 with none, as promhttp's ContinueOnError does.
		s.cfg.Logf("httpapi: gathering metrics: %v", err)
	}
	h := http.Header{}
	if a := ctx.Request.Header.Peek(fasthttp.HeaderAccept); len(a) > 0 {
		h.Set(fasthttp.HeaderAccept, string(a))
	}
	format := expfmt.NegotiateAccept(h, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	return rawBody{contentType: string(format), body: buf.Bytes()}, nil
}
