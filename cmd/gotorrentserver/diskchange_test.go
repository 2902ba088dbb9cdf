package main

// The disk under a torrent: symlinks out of the download root and data
// changing behind a seeding torrent (issue 11).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gotorrentserver/netio/peertest"
)

// TestSymlinkEscapeRefused: ROOT/payload is a symlink to a folder outside
// the download root holding a precious a.bin; a torrent named payload added
// with an empty path goes to state error naming the file, the outside
// folder is untouched, and removing the torrent with its data leaves it.
func TestSymlinkEscapeRefused(t *testing.T) {
	peertest.Require(t, "opentracker")
	_, mi, raw := swarmFixture(t, 2, 4096)
	stateDir, downloads := t.TempDir(), t.TempDir()
	outside := t.TempDir()
	precious := bytes.Repeat([]byte("precious "), 5000)
	if err := os.WriteFile(filepath.Join(outside, "a.bin"), precious, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(downloads, "payload")); err != nil {
		t.Fatal(err)
	}
	outsideBefore := dirNames(t, outside)
	checkOutside := func(when string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(outside, "a.bin"))
		if err != nil || !bytes.Equal(got, precious) {
			t.Fatalf("%s: %s/a.bin changed (%d bytes, %v)", when, outside, len(got), err)
		}
		if now := dirNames(t, outside); !slices.Equal(now, outsideBefore) {
			t.Fatalf("%s: %s holds %q, before %q", when, outside, now, outsideBefore)
		}
	}
	d := startServe(t, stateDir, downloads, freePort(t))
	d.addTorrent(t, "path=", raw, mi.InfoHash)
	// Seeding would mean the link was followed: the outside folder says how.
	td := d.waitFor(t, mi.InfoHash, "state error", 30*time.Second, func(td torrentJSON) bool {
		return td.State == "error" || td.State == "seeding"
	})
	checkOutside("once the torrent ran")
	msg := td.errText()
	t.Logf("error shown: %s", msg)
	if td.State != "error" {
		t.Fatalf("state %q, error %s: want error", td.State, msg)
	}
	if !strings.Contains(msg, filepath.Join("payload", "a.bin")) && !strings.Contains(msg, filepath.Join("payload", "b.bin")) {
		t.Fatalf("error does not name the file: %s", msg)
	}
	if strings.Contains(msg, outside) {
		t.Fatalf("error names the link's target %s: %s", outside, msg)
	}
	b, code := d.get("/removetorrent?delete=true&infohash=" + mi.InfoHash.String())
	t.Logf("/removetorrent delete=true: %d %s", code, b)
	if code != 200 && code != 500 {
		t.Fatalf("/removetorrent: %d %s", code, b)
	}
	if _, code := d.info(mi.InfoHash); code != 404 {
		t.Fatalf("/torrentdata after remove: %d", code)
	}
	checkOutside("after remove with delete=true")
}

// TestDataChangedUnderSeed: a file of a seeding torrent is cut in half or
// deleted; when a leecher asks for it the torrent goes to state error
// naming the file, progress unchanged; /recheck answers 200 with the
// infohash and the torrent rechecks into downloading with what is left.
func TestDataChangedUnderSeed(t *testing.T) {
	const sizeA, sizeB = 3<<20 + 1111, 3<<20 + 2222
	for _, tc := range []struct {
		name string
		harm func(path string) error
		left int64 // bytes of the torrent still on disk afterwards, from its start
	}{
		{"truncated", func(path string) error { return os.Truncate(path, sizeB/2) }, sizeA + sizeB/2},
		{"deleted", os.Remove, sizeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir, downloads := t.TempDir(), t.TempDir()
			raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "chg", nil,
				fileSpec{"a.bin", sizeA}, fileSpec{"b.bin", sizeB})
			peerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			d := startServe(t, stateDir, downloads, freePort(t), "-peer-addr", peerAddr)
			d.addTorrent(t, "path=keep", raw, mi.InfoHash)
			seeding := d.waitSeeding(t, mi.InfoHash)
			if err := tc.harm(filepath.Join(downloads, "keep", "chg", "b.bin")); err != nil {
				t.Fatal(err)
			}
			// The file has been gone a while when a leecher comes. Storage
			// checks a cached descriptor against the disk at most once a
			// second (FileCache.liveEvery): within a second of the check's
			// open, a deleted file's old bytes are still served (the whole
			// 6 MiB went out in 0.1 s that way, and the torrent stayed
			// seeding).
			time.Sleep(1500 * time.Millisecond)
			bin, _ := binary()
			leecher := peertest.Start(t, bin, "get", "-o", t.TempDir(), "-listen", "127.0.0.1:0", "-peer", peerAddr,
				writeTorrentFile(t, raw))
			defer leecher.Stop()
			start := time.Now()
			td := d.waitFor(t, mi.InfoHash, "state error", 10*time.Second, func(td torrentJSON) bool { return td.State == "error" })
			t.Logf("state error %v after the leecher started: %s", time.Since(start).Round(time.Millisecond), td.errText())
			if !strings.Contains(td.errText(), "b.bin") {
				t.Fatalf("error does not name b.bin: %s", td.errText())
			}
			if td.Progress != seeding.Progress {
				t.Fatalf("progress in error %v, was %v", td.Progress, seeding.Progress)
			}
			b, code := d.get("/recheck?infohash=" + mi.InfoHash.String())
			var ok okJSON
			if json.Unmarshal(b, &ok); code != 200 || ok.InfoHash != mi.InfoHash.String() {
				t.Fatalf("/recheck: %d %s", code, b)
			}
			sawChecking := false
			td = d.waitFor(t, mi.InfoHash, "downloading after the recheck", 30*time.Second, func(td torrentJSON) bool {
				sawChecking = sawChecking || td.State == "checking"
				return td.State != "checking" && td.State != "error" && td.Rechecks > seeding.Rechecks
			})
			t.Logf("after /recheck: state %s progress %.3f rechecks %d (checking seen: %v)", td.State, td.Progress, td.Rechecks, sawChecking)
			if td.State != "downloading" || td.Progress >= 1 || td.Progress <= 0 || td.Error != nil {
				t.Fatalf("after /recheck: state %s progress %v error %s, want downloading with what is left",
					td.State, td.Progress, td.errText())
			}
			// The recheck found exactly the pieces still whole on disk.
			bf, _ := base64.StdEncoding.DecodeString(td.BitfieldBase64)
			for i := range mi.NumPieces() {
				whole := int64(i+1)*mi.PieceLength <= tc.left
				if has := i/8 < len(bf) && bf[i/8]&(0x80>>(i%8)) != 0; has != whole {
					t.Fatalf("after /recheck: piece %d of %d in the bitfield: %v, whole on disk: %v", i, mi.NumPieces(), has, whole)
				}
			}
		})
	}
}
