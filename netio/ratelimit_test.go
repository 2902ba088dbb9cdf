package netio

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// measureRate waits for the counter to move, lets the transfer run for
// warmup, then samples it over window and returns bytes/s. Counting from the
// first byte keeps the peer's start-up (a Python interpreter, a connection,
// a handshake) out of the figure. Each sample carries the session's own time,
// so a snapshot's lag behind the wall clock does not skew the rate.
func measureRate(t *testing.T, sample func() (int64, time.Time), warmup, window time.Duration) float64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, _ := sample(); b > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no byte moved within 30 s")
		}
	}
	time.Sleep(warmup)
	b0, t0 := sample()
	time.Sleep(window)
	b1, t1 := sample()
	return float64(b1-b0) / t1.Sub(t0).Seconds()
}

func checkWithin(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	t.Logf("%s: %.0f B/s measured, limit %.0f B/s (%.1f%%)", what, got, want, 100*(got-want)/want)
	if math.Abs(got-want) > tolerance*want {
		t.Fatalf("%s: %.0f B/s is not within %.0f%% of the %.0f B/s limit", what, got, 100*tolerance, want)
	}
}

// TestRateLimitsHold: per-torrent and global download and upload limits
// hold within 10% over 20 s against real peers (python3-libtorrent, which
// does not rate limit local peers itself).
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
		s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir, MaxDown: limit}})
		if err != nil {
			t.Fatal(err)
		}
		s.AddPeers(addrs(ltAddr(seed)), "test")
		got := measureRate(t, func() (int64, time.Time) { sn := s.Snapshot(); return sn.Downloaded, sn.At }, 6*time.Second, 20*time.Second)
		checkWithin(t, "download", got, limit, 0.10)
	})
	t.Run("upload", func(t *testing.T) {
		n := startNode(t, engine.Config{})
		s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data), MaxUp: limit}})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, s, engine.StateSeeding, 60*time.Second)
		leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", t.TempDir(), "--peer", n.addr().String())
		// What the leecher verified, read from its STATUS lines at the same
		// moments: the limit must hold where the user sees it too.
		// The last two samples are measureRate's own (window start and
		// end); the ones before are its wait for the first byte.
		var peerBytes [2]float64
		var peerAt [2]time.Time
		got := measureRate(t, func() (int64, time.Time) {
			sn := s.Snapshot()
			peerBytes[0], peerAt[0] = peerBytes[1], peerAt[1]
			peerBytes[1], peerAt[1] = ltProgress(leech.Output())*float64(mi.TotalLength), time.Now()
			return sn.Uploaded, sn.At
		}, 3*time.Second, 20*time.Second)
		checkWithin(t, "upload", got, limit, 0.10)
		checkWithin(t, "received by libtorrent", (peerBytes[1]-peerBytes[0])/peerAt[1].Sub(peerAt[0]).Seconds(), limit, 0.10)
	})
	// Global limits (serve's -max-down and -max-up) hold over two torrents
	// at once, each without a limit of its own.
	twoTorrents := func(t *testing.T) ([2]string, [2]*metainfo.MetaInfo) {
		tpath2, mi2 := makeTorrent(t, data, 128<<10)
		return [2]string{tpath, tpath2}, [2]*metainfo.MetaInfo{mi, mi2}
	}
	total := func(ss [2]*engine.Session, up bool) (int64, time.Time) {
		var n int64
		var at time.Time
		for _, s := range ss {
			sn := s.Snapshot()
			if up {
				n += sn.Uploaded
			} else {
				n += sn.Downloaded
			}
			at = sn.At
		}
		return n, at
	}
	t.Run("global download", func(t *testing.T) {
		paths, mis := twoTorrents(t)
		n := startNode(t, engine.Config{})
		n.client.SetGlobalRates(limit, 0)
		var ss [2]*engine.Session
		for i, m := range mis {
			seed := peertest.Libtorrent(t, "--torrent", paths[i], "--dir", filepath.Dir(data), "--keep")
			if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
				t.Fatal(err)
			}
			s, err := n.client.Add(m, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
			if err != nil {
				t.Fatal(err)
			}
			s.AddPeers(addrs(ltAddr(seed)), "test")
			ss[i] = s
		}
		got := measureRate(t, func() (int64, time.Time) { return total(ss, false) }, 6*time.Second, 20*time.Second)
		checkWithin(t, "global download", got, limit, 0.10)
	})
	t.Run("global upload", func(t *testing.T) {
		paths, mis := twoTorrents(t)
		n := startNode(t, engine.Config{})
		n.client.SetGlobalRates(0, limit)
		var ss [2]*engine.Session
		for i, m := range mis {
			s, err := n.client.Add(m, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, s, engine.StateSeeding, 60*time.Second)
			ss[i] = s
		}
		for i := range mis {
			peertest.Libtorrent(t, "--torrent", paths[i], "--dir", t.TempDir(), "--peer", n.addr().String())
		}
		got := measureRate(t, func() (int64, time.Time) { return total(ss, true) }, 4*time.Second, 20*time.Second)
		checkWithin(t, "global upload", got, limit, 0.10)
	})
}

// ltProgress is the progress in the last STATUS line lt_peer.py printed
// ("STATUS state progress downrate uprate peers").
func ltProgress(out string) float64 {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var state string
		var progress float64
		if n, _ := fmt.Sscanf(lines[i], "STATUS %s %f", &state, &progress); n == 2 {
			return progress
		}
	}
	return 0
}
