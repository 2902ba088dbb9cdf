package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// filesJSON is what this test reads of /torrentdata beyond torrentJSON.
type filesJSON struct {
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	Rechecks int     `json:"rechecks"`
	Size     int64   `json:"size"`
	Wanted   int64   `json:"wanted"`
	Files    []struct {
		Path     string  `json:"path"`
		Progress float64 `json:"progress"`
		Priority int     `json:"priority"`
	} `json:"files"`
}

func (p *daemonProc) files(t *testing.T, ih metainfo.Hash) (filesJSON, []int) {
	t.Helper()
	b, code := p.get("/torrentdata?infohash=" + ih.String())
	var fj filesJSON
	if code != 200 || json.Unmarshal(b, &fj) != nil {
		t.Fatalf("/torrentdata: %d %s", code, b)
	}
	var prio []int
	for _, f := range fj.Files {
		prio = append(prio, f.Priority)
	}
	return fj, prio
}

// waitRecord polls the torrent's resume record in the state folder until
// it keeps prio and at least have verified pieces: a kill -9 after that
// loses nothing this test checks.
func waitRecord(t *testing.T, stateDir string, ih metainfo.Hash, prio []int, have int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rec struct {
			Priorities []int  `json:"priorities"`
			Have       string `json:"have"`
		}
		b, err := os.ReadFile(filepath.Join(stateDir, ih.String()+".resume"))
		if err == nil && json.Unmarshal(b, &rec) == nil && slices.Equal(rec.Priorities, prio) {
			if bf, err := hex.DecodeString(rec.Have); err == nil && countBits(bf) >= have {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("resume record never kept priorities %v and %d pieces: %s", prio, have, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSkippedFileFromLibtorrent: a three-file torrent (64 KiB pieces, both
// file boundaries inside a piece) downloads from a python3-libtorrent seed
// with its middle file skipped: that file is never created, the others are
// byte-identical, the torrent seeds at progress 1, and the bytes of the
// middle file in the shared pieces wait in the part file. A kill -9 and a
// restart keep the priorities and trust the pieces (no recheck). Wanted
// again over the API, the middle file downloads and is byte-identical.
func TestSkippedFileFromLibtorrent(t *testing.T) {
	peertest.Require(t, "libtorrent", "opentracker")
	files := []fileSpec{{"a.bin", 300000}, {"b.bin", 500000}, {"c.bin", 200000}}
	srcParent := t.TempDir()
	_, probe := makeFolderTorrent(t, srcParent, "three", nil, files...)
	tr := peertest.Opentracker(t, probe.InfoHash)
	raw, mi := makeFolderTorrent(t, srcParent, "three", []string{tr.HTTPURL}, files...)
	seed := peertest.Libtorrent(t, "--torrent", writeTorrentFile(t, raw), "--dir", srcParent, "--keep")
	if _, err := seed.WaitLine("STATUS seeding", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tr.WaitSwarm(mi.InfoHash, 1, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	stateDir, downloads := t.TempDir(), t.TempDir()
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	d.addTorrent(t, "path=dl&priorities=1,0,1", raw, mi.InfoHash)
	td := d.waitSeeding(t, mi.InfoHash)
	dl := filepath.Join(downloads, "dl")
	same := func(name string) {
		t.Helper()
		want, _ := os.ReadFile(filepath.Join(srcParent, "three", name))
		got, err := os.ReadFile(filepath.Join(dl, "three", name))
		if err != nil || !bytes.Equal(want, got) {
			t.Fatalf("%s differs from the seed's: %v", name, err)
		}
	}
	absent := func(when string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(dl, "three", "b.bin")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the skipped file exists (%v)", when, err)
		}
	}
	same("a.bin")
	same("c.bin")
	absent("seeding")
	if fi, err := os.Stat(filepath.Join(dl, storage.PartFileName(mi.InfoHash))); err != nil || fi.Size() != 2*mi.PieceLength {
		t.Fatalf("part file: %v %v, want two 64 KiB slots", fi, err)
	}
	fj, prio := d.files(t, mi.InfoHash)
	// b.bin (300000..800000) alone holds pieces 5-11.
	if fj.Progress != 1 || !slices.Equal(prio, []int{1, 0, 1}) || fj.Wanted != fj.Size-7*mi.PieceLength || td.Rechecks != 0 {
		t.Fatalf("seeding with b.bin skipped: %+v", fj)
	}

	waitRecord(t, stateDir, mi.InfoHash, []int{1, 0, 1}, mi.NumPieces()-7)
	d.kill()
	d = startServe(t, stateDir, downloads, port)
	fj, prio = d.files(t, mi.InfoHash)
	if fj.State == "checking" || fj.Rechecks != 0 || fj.Progress != 1 || !slices.Equal(prio, []int{1, 0, 1}) {
		t.Fatalf("after kill -9 and restart: %+v\n%s", fj, d.log.String())
	}
	d.waitSeeding(t, mi.InfoHash)
	absent("after the restart")

	if b, code := d.get("/setfilepriority?infohash=" + mi.InfoHash.String() + "&file=1&priority=1"); code != 200 {
		t.Fatalf("setfilepriority: %d %s", code, b)
	}
	d.waitFor(t, mi.InfoHash, "b.bin downloaded", 60*time.Second, func(td torrentJSON) bool {
		return td.State == "seeding" && countBits(decodeBase64(td.BitfieldBase64)) == mi.NumPieces()
	})
	for _, f := range files {
		same(f.name)
	}
	fj, prio = d.files(t, mi.InfoHash)
	if fj.Rechecks != 0 || fj.Progress != 1 || !slices.Equal(prio, []int{1, 1, 1}) || fj.Wanted != fj.Size {
		t.Fatalf("after wanting b.bin: %+v", fj)
	}
}

func decodeBase64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}
