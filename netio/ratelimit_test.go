package netio

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/netio/peertest"
)

// measureRate samples counter over window after warm-up and returns bytes/s.
func measureRate(counter func() int64, warmup, window time.Duration) float64 {
	time.Sleep(warmup)
	start, t0 := counter(), time.Now()
	time.Sleep(window)
	return float64(counter()-start) / time.Since(t0).Seconds()
}

func checkWithin(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	t.Logf("%s: %.0f B/s measured, limit %.0f B/s (%.1f%%)", what, got, want, 100*(got-want)/want)
	if math.Abs(got-want) > tolerance*want {
		t.Fatalf("%s: %.0f B/s is not within %.0f%% of the %.0f B/s limit", what, got, 100*tolerance, want)
	}
}

// TestRateLimitsHold: per-torrent download and upload limits hold within
// 10% over 20 s against a real peer (python3-libtorrent, which does not rate
// limit local peers itself).
func TestRateLimitsHold(t *testing.T) {
	if testing.Short() {
		t.Skip("25 s per direction")
	}
	peertest.Require(t, "libtorrent")
	const limit = 1 << 20
	data := testData(t, "limits", []int{48<<20 + 3})
	tpath, mi := makeTorrent(t, data, 256<<10)

	t.Run("download", func(t *testing.T) {
		seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep")
		if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, engine.Config{})
		s, err := n.client.Add(mi, engine.AddOptions{Dir: n.dir, MaxDown: limit})
		if err != nil {
			t.Fatal(err)
		}
		s.AddPeers(addrs(ltAddr(seed)), "test")
		got := measureRate(func() int64 { return s.Snapshot().Downloaded }, 6*time.Second, 20*time.Second)
		checkWithin(t, "download", got, limit, 0.10)
	})
	t.Run("upload", func(t *testing.T) {
		n := startNode(t, engine.Config{})
		s, err := n.client.Add(mi, engine.AddOptions{Dir: filepath.Dir(data), MaxUp: limit})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, s, engine.StateSeeding, 60*time.Second)
		peertest.Libtorrent(t, "--torrent", tpath, "--dir", t.TempDir(), "--peer", n.addr().String())
		got := measureRate(func() int64 { return s.Snapshot().Uploaded }, 3*time.Second, 20*time.Second)
		checkWithin(t, "upload", got, limit, 0.10)
	})
}
