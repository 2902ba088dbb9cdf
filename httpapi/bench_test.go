package httpapi

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// benchTorrent is a synthetic torrent of 64 pieces; its data never exists,
// which is fine for torrents added stopped.
func benchTorrent(b *testing.B, i int, rng *mrand.Rand) *metainfo.MetaInfo {
	pieces := make([]byte, 64*20)
	for j := range pieces {
		pieces[j] = byte(rng.Uint32())
	}
	raw, err := metainfo.Encode(map[string]any{"info": map[string]any{
		"name": fmt.Sprintf("bench-%04d", i), "piece length": int64(16 << 10),
		"length": int64(64 << 14), "pieces": pieces,
	}})
	if err != nil {
		b.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	return mi
}

// BenchmarkAllData measures /alldata and /torrentdata through real HTTP
// with 1,000 torrents loaded, reporting p50 and p99 latency.
func BenchmarkAllData(b *testing.B) {
	e := newEnv(b, nil)
	rng := mrand.New(mrand.NewPCG(1, 2))
	var hashes []metainfo.Hash
	for i := range 1000 {
		mi := benchTorrent(b, i, rng)
		if _, err := e.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: e.root, Stopped: true}}); err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, mi.InfoHash)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	b.Cleanup(hc.CloseIdleConnections)
	get := func(b *testing.B, path string) time.Duration {
		start := time.Now()
		res, err := hc.Get(e.base + path)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
		return time.Since(start)
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	}
	b.Run("alldata", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			lat = append(lat, get(b, "/alldata"))
		}
		report(b, lat)
	})
	b.Run("torrentdata", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		i := 0
		for b.Loop() {
			lat = append(lat, get(b, "/torrentdata?infohash="+hashes[i%len(hashes)].String()))
			i++
		}
		report(b, lat)
	})
}
