package main

// What the API shows after a stop and after a transfer (issue 11).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/netio/peertest"
)

// TestStopKeepsProgress: a seeding torrent stopped over the API shows
// state stopped, progress 1 and a full bitfield in /torrentdata and in
// /alldata; /alldata says listen_error null.
func TestStopKeepsProgress(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	// 37 pieces: the bitfield's last byte has spare bits that must stay 0.
	raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "stopme", nil,
		fileSpec{"s.bin", 36<<16 + 5000})
	d := startServe(t, stateDir, downloads, freePort(t))
	d.addTorrent(t, "path=keep", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	if b, code := d.get("/stoptorrent?infohash=" + mi.InfoHash.String()); code != 200 {
		t.Fatalf("/stoptorrent: %d %s", code, b)
	}
	check := func(where string, td torrentJSON) {
		t.Helper()
		bf, err := base64.StdEncoding.DecodeString(td.BitfieldBase64)
		if td.State != "stopped" || td.Progress != 1 || err != nil || td.BitfieldLength != mi.NumPieces() ||
			len(bf) != (mi.NumPieces()+7)/8 || countBits(bf) != mi.NumPieces() {
			t.Fatalf("%s after /stoptorrent: state %q progress %v, bitfield %d bits set of %d pieces (length %d, %d bytes, %v)",
				where, td.State, td.Progress, countBits(bf), mi.NumPieces(), td.BitfieldLength, len(bf), err)
		}
	}
	td, _ := d.info(mi.InfoHash)
	check("/torrentdata", td)

	b, code := d.get("/alldata")
	if code != 200 {
		t.Fatalf("/alldata: %d", code)
	}
	var all struct {
		Sessions []torrentJSON `json:"sessions"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &top)
	if le, ok := top["listen_error"]; !ok || string(le) != "null" {
		t.Fatalf("/alldata listen_error: present %v, value %s; want null while the peer port is healthy", ok, le)
	}
	found := false
	for _, s := range all.Sessions {
		if s.InfoHash == mi.InfoHash.String() {
			check("/alldata", s)
			found = true
		}
	}
	if !found {
		t.Fatalf("/alldata does not list the torrent: %s", b)
	}
}

// TestUpRateDropsAfterTransfer: a seeding daemon serves a leecher (our own
// get); the upload rate shows while it transfers and is 0 within 3 s of the
// leecher's exit.
func TestUpRateDropsAfterTransfer(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "rate", nil, fileSpec{"r.bin", 6 << 20})
	peerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startServe(t, stateDir, downloads, freePort(t), "-peer-addr", peerAddr)
	// 2 MiB/s: a transfer of about 3 s, long enough to see the rate.
	d.addTorrent(t, "path=keep&maxup=2048", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	bin, _ := binary()
	out := t.TempDir()
	leecher := peertest.Start(t, bin, "get", "-o", out, "-listen", "127.0.0.1:0", "-peer", peerAddr, writeTorrentFile(t, raw))
	exited := make(chan error, 1)
	go func() { exited <- leecher.Wait(60 * time.Second) }()
	var maxRate int64
	var exitedAt time.Time
poll:
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("leecher: %v\n%s", err, leecher.Output())
			}
			exitedAt = time.Now()
			break poll
		case <-time.After(50 * time.Millisecond):
		}
		td, _ := d.info(mi.InfoHash)
		maxRate = max(maxRate, td.UpRate)
	}
	got, err := os.ReadFile(filepath.Join(out, "rate", "r.bin"))
	want, _ := os.ReadFile(filepath.Join(downloads, "keep", "rate", "r.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("leecher's copy differs: %v", err)
	}
	if maxRate == 0 {
		t.Fatal("uprate never above 0 during the transfer")
	}
	td := d.waitFor(t, mi.InfoHash, "uprate 0 after the leecher left", 3*time.Second-time.Since(exitedAt),
		func(td torrentJSON) bool { return td.UpRate == 0 })
	t.Logf("uprate peaked at %d KiB/s, 0 %v after the leecher exited (uploaded %d KiB)", maxRate,
		time.Since(exitedAt).Round(time.Millisecond), td.Uploaded)
}
