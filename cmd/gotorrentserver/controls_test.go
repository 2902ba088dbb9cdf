package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// controlJSON is what these tests read of a torrent beside torrentJSON.
type controlJSON struct {
	State           string  `json:"state"`
	Label           string  `json:"label"`
	QueuePosition   int     `json:"queue_position"`
	TotalDownloaded int64   `json:"total_downloaded"`
	TotalUploaded   int64   `json:"total_uploaded"`
	Ratio           float64 `json:"ratio"`
	LimitReached    *string `json:"limit_reached"`
	Progress        float64 `json:"progress"`
}

func (p *daemonProc) control(t *testing.T, ih metainfo.Hash) controlJSON {
	t.Helper()
	b, code := p.get("/torrentdata?infohash=" + ih.String())
	var c controlJSON
	if code != 200 || json.Unmarshal(b, &c) != nil {
		t.Fatalf("/torrentdata: %d %s", code, b)
	}
	return c
}

func (p *daemonProc) mustGet(t *testing.T, path string) {
	t.Helper()
	if b, code := p.get(path); code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
}

// Three downloads from python3-libtorrent seeds under max-active-downloads
// 1: one at a time, in queue order (which the operator changed); then a
// real libtorrent leecher takes data until the ratio limit stops the
// torrent; then after a kill -9 the settings, queue order, label and
// lifetime totals are all back.
func TestQueueRatioAndRestartWithLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent")
	const size = 4 << 20
	src := t.TempDir()
	type tor struct {
		raw  []byte
		mi   *metainfo.MetaInfo
		seed *peertest.Proc
	}
	var ts []tor
	for _, name := range []string{"qa", "qb", "qc"} {
		raw, mi := makeFolderTorrent(t, src, name, nil, fileSpec{"data.bin", size})
		// Capped, so each download lasts a second or two and the
		// queue's order shows.
		seed := peertest.Libtorrent(t, "--torrent", writeTorrentFile(t, raw), "--dir", src, "--keep",
			"--upload-limit", fmt.Sprint(3<<20))
		ts = append(ts, tor{raw, mi, seed})
	}
	for _, x := range ts {
		if _, err := x.seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stateDir, downloads := t.TempDir(), t.TempDir()
	peerPort := freePort(t)
	d := startServe(t, stateDir, downloads, freePort(t), "-peer-addr", fmt.Sprintf("127.0.0.1:%d", peerPort),
		"-max-active-downloads", "1")
	for _, x := range ts {
		d.addTorrent(t, "path=", x.raw, x.mi.InfoHash)
	}
	// c before b.
	d.mustGet(t, "/setqueueposition?infohash="+ts[2].mi.InfoHash.String()+"&position=1")
	d.mustGet(t, "/setlabel?infohash="+ts[1].mi.InfoHash.String()+"&label=linux")
	for _, x := range ts {
		d.mustGet(t, fmt.Sprintf("/addpeer?infohash=%s&host=127.0.0.1:%d", x.mi.InfoHash, x.seed.Port))
	}
	var done []int
	deadline := time.Now().Add(90 * time.Second)
	for len(done) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("not all complete; done %v\n%s", done, d.log.String())
		}
		active := 0
		for i, x := range ts {
			c := d.control(t, x.mi.InfoHash)
			switch c.State {
			case "downloading", "checking", "metadata":
				active++
			case "seeding":
				if !containsInt(done, i) {
					done = append(done, i)
				}
			}
		}
		if active > 1 {
			t.Fatalf("%d torrents downloading at once under max-active-downloads 1", active)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fmt.Sprint(done) != "[0 2 1]" {
		t.Fatalf("completed in order %v, want the queue's [0 2 1]", done)
	}
	for _, x := range ts {
		want, _ := os.ReadFile(filepath.Join(src, x.mi.Name, "data.bin"))
		got, _ := os.ReadFile(filepath.Join(downloads, x.mi.Name, "data.bin"))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: bytes on disk differ from the seed's", x.mi.Name)
		}
	}
	for _, x := range ts {
		x.seed.Stop()
	}

	// A ratio limit of 0.25 on a: a leecher capped at 1 MiB/s gets a
	// quarter of it, then the torrent stops, saying why.
	a := ts[0].mi.InfoHash
	d.mustGet(t, "/setratiolimit?infohash="+a.String()+"&ratio=0.25")
	leech := peertest.Libtorrent(t, "--torrent", writeTorrentFile(t, ts[0].raw), "--dir", t.TempDir(),
		"--peer", fmt.Sprintf("127.0.0.1:%d", peerPort), "--download-limit", fmt.Sprint(1<<20))
	deadline = time.Now().Add(60 * time.Second)
	var c controlJSON
	for c = d.control(t, a); c.State != "stopped"; c = d.control(t, a) {
		if time.Now().After(deadline) {
			t.Fatalf("ratio limit never stopped it: %+v\n%s", c, leech.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.LimitReached == nil || *c.LimitReached != "ratio limit reached" || c.Ratio < 0.25 || c.TotalUploaded >= size {
		t.Fatalf("stopped with limit_reached %v, ratio %.3f, uploaded %d of %d", c.LimitReached, c.Ratio, c.TotalUploaded, size)
	}
	leech.Stop()
	d.mustGet(t, "/reannounce?infohash="+ts[2].mi.InfoHash.String())
	if b, code := d.do("POST", "/settings", []byte(`{"seed_time_limit":600,"maxup":300}`)); code != 200 {
		t.Fatalf("POST /settings: %d %s", code, b)
	}
	before := d.control(t, a)

	// kill -9, and start again without the flag: the saved settings win.
	d.kill()
	d = startServe(t, stateDir, downloads, freePort(t), "-peer-addr", fmt.Sprintf("127.0.0.1:%d", peerPort))
	b, _ := d.get("/settings")
	var g map[string]any
	json.Unmarshal(b, &g)
	if g["max_active_downloads"] != float64(1) || g["seed_time_limit"] != float64(600) || g["maxup"] != float64(300) {
		t.Fatalf("settings after kill -9: %s", b)
	}
	for i, want := range []int{0, 2, 1} {
		if p := d.control(t, ts[i].mi.InfoHash).QueuePosition; p != want {
			t.Fatalf("torrent %d at queue position %d after kill -9, want %d", i, p, want)
		}
	}
	if l := d.control(t, ts[1].mi.InfoHash).Label; l != "linux" {
		t.Fatalf("label after kill -9: %q", l)
	}
	after := d.control(t, a)
	if after.State != "stopped" || after.TotalDownloaded < size || after.TotalUploaded != before.TotalUploaded {
		t.Fatalf("a after kill -9: %+v, before %+v", after, before)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
