package engine

import (
	"crypto/sha1"
	"encoding/binary"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/metainfo"
)

// BenchmarkLoadTorrents adds 10,000 complete torrents (trusted resume
// bitfields, as at daemon start-up) and reports the time to have them all
// seeding and the heap each one costs.
func BenchmarkLoadTorrents(b *testing.B) {
	const n = 10000
	mis := make([]*metainfo.MetaInfo, n)
	for i := range mis {
		mi := &metainfo.MetaInfo{Name: "t", PieceLength: 1 << 20, TotalLength: 100 << 20, SingleFile: true,
			Files:    []metainfo.File{{Path: []string{"t"}, Length: 100 << 20}},
			Pieces:   make([]metainfo.Hash, 100),
			Trackers: [][]string{{"http://127.0.0.1:1/announce"}}}
		var seed [8]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		mi.InfoHash = sha1.Sum(seed[:])
		mis[i] = mi
	}
	for b.Loop() {
		c := New(Config{Tick: -1, Logf: func(string, ...any) {}})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		sessions := make([]*Session, n)
		for i, mi := range mis {
			have := bitset.New(100)
			have.SetAll()
			s, err := c.Add(mi, AddOptions{Settings: Settings{Dir: b.TempDir()}, Have: have})
			if err != nil {
				b.Fatal(err)
			}
			sessions[i] = s
		}
		for _, s := range sessions {
			for s.Snapshot().State != StateSeeding {
				time.Sleep(time.Millisecond)
			}
		}
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if path := os.Getenv("GTS_HEAPPROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		b.ReportMetric(elapsed.Seconds(), "s/10k-loaded")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n/1024, "heap-KiB/torrent")
		c.Close()
	}
}
