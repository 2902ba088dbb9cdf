package metainfo

import (
	"bytes"
	"crypto/sha1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCreateRoundTrip: create -> parse gives the same files and lengths, and
// every piece hash matches the bytes on disk.
func TestCreateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	writeTree(t, src, 1)
	for _, pl := range []int64{16 << 10, 32 << 10, 1 << 20} {
		b, err := Create(src, CreateOptions{PieceLength: pl, Workers: 3,
			Trackers: [][]string{{"http://127.0.0.1:1/a"}, {"udp://127.0.0.1:2"}}, WebSeeds: []string{"http://127.0.0.1:3/"}})
		if err != nil {
			t.Fatal(err)
		}
		mi, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		var names []string
		for _, f := range mi.Files {
			p := filepath.Join(append([]string{src}, f.Path...)...)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(data)) != f.Length {
				t.Fatalf("%s: length %d, file has %d", p, f.Length, len(data))
			}
			names = append(names, strings.Join(f.Path, "/"))
			all = append(all, data...)
		}
		if got := strings.Join(names, ","); got != "a.bin,sub/b.bin,sub/deeper/c.txt,sub/empty,z.dat" {
			t.Fatalf("files %s", got)
		}
		for i, h := range mi.Pieces {
			end := min(int64(i+1)*pl, int64(len(all)))
			if sha1.Sum(all[int64(i)*pl:end]) != h {
				t.Fatalf("piece length %d: piece %d hash mismatch", pl, i)
			}
		}
		if len(mi.Trackers) != 2 || len(mi.WebSeeds) != 1 || mi.CreatedBy != "GoTorrentServer" {
			t.Fatalf("trackers %v web seeds %v created by %q", mi.Trackers, mi.WebSeeds, mi.CreatedBy)
		}
	}
}

// TestCreateMatchesMktorrent: the same folder and piece length give the
// same info dict, so the same infohash, as mktorrent.
func TestCreateMatchesMktorrent(t *testing.T) {
	mk := requireTool(t, "mktorrent")
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	writeTree(t, src, 2)
	single := filepath.Join(dir, "one.bin")
	os.WriteFile(single, bytes.Repeat([]byte{1, 2, 3}, 123457), 0o644)
	for _, target := range []string{src, single} {
		for _, private := range []bool{false, true} {
			out := filepath.Join(dir, "mk.torrent")
			os.Remove(out)
			args := []string{"-l", "16", "-a", "http://127.0.0.1:1/a", "-o", out, target}
			if private {
				args = append([]string{"-p"}, args...)
			}
			if b, err := exec.Command(mk, args...).CombinedOutput(); err != nil {
				t.Fatalf("mktorrent: %v %s", err, b)
			}
			theirs, _ := os.ReadFile(out)
			tmi, err := Parse(theirs)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Create(target, CreateOptions{PieceLength: 1 << 16, Private: private, Date: time.Unix(1, 0)})
			if err != nil {
				t.Fatal(err)
			}
			omi, err := Parse(ours)
			if err != nil {
				t.Fatal(err)
			}
			if omi.InfoHash != tmi.InfoHash {
				t.Errorf("%s private=%v: ours %s, mktorrent %s", filepath.Base(target), private, omi.InfoHash, tmi.InfoHash)
			}
		}
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(filepath.Join(dir, "missing"), CreateOptions{}); err == nil {
		t.Error("missing path accepted")
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Create(empty, CreateOptions{}); err == nil {
		t.Error("empty folder accepted")
	}
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := Create(f, CreateOptions{PieceLength: 1000}); err == nil {
		t.Error("piece length below 16 KiB accepted")
	}
}

func TestAutoPieceLength(t *testing.T) {
	for total, want := range map[int64]int64{1: 32 << 10, 1 << 30: 1 << 20, 1 << 40: 16 << 20} {
		if got := AutoPieceLength(total); got != want {
			t.Errorf("AutoPieceLength(%d) = %d, want %d", total, got, want)
		}
	}
}
