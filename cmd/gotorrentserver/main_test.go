package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gotorrentserver/netio"
)

// TestInfoAgreesWithLibtorrent runs `info -json` on every committed test
// torrent and compares with what libtorrent printed for it.
func TestInfoAgreesWithLibtorrent(t *testing.T) {
	dir := filepath.Join("..", "..", "metainfo", "testdata", "torrents")
	golden, err := os.ReadFile(filepath.Join(dir, "libtorrent.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(golden))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var lt struct {
			Path, InfoHash, Name string
			PieceLength          int64 `json:"piece_length"`
			NumPieces            int   `json:"num_pieces"`
			TotalSize            int64 `json:"total_size"`
			Private              bool
			Trackers             [][2]any // [tier, url]
			WebSeeds             []string `json:"web_seeds"`
			Files                []fileJSON
		}
		if err := json.Unmarshal(sc.Bytes(), &lt); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run([]string{"info", "-json", filepath.Join(dir, lt.Path)}, &stdout, &stderr)
		if lt.InfoHash == strings.Repeat("0", 40) {
			if code != 1 || !strings.Contains(stderr.String(), "v2-only torrents are not supported") {
				t.Errorf("%s: exit %d, stderr %q", lt.Path, code, stderr.String())
			}
			continue
		}
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", lt.Path, code, stderr.String())
		}
		var got infoJSON
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		want := infoJSON{Name: lt.Name, InfoHash: lt.InfoHash, PieceLength: lt.PieceLength,
			Pieces: lt.NumPieces, TotalSize: lt.TotalSize, Private: lt.Private, Files: lt.Files,
			Trackers: [][]string{}, WebSeeds: lt.WebSeeds}
		for _, tr := range lt.Trackers {
			tier := int(tr[0].(float64))
			for len(want.Trackers) <= tier {
				want.Trackers = append(want.Trackers, nil)
			}
			want.Trackers[tier] = append(want.Trackers[tier], tr[1].(string))
		}
		if want.WebSeeds == nil {
			want.WebSeeds = []string{}
		}
		// Order within a tier carries no meaning (BEP 12 shuffles it), and
		// libtorrent does not keep the file's.
		for _, tiers := range [][][]string{got.Trackers, want.Trackers} {
			for _, tier := range tiers {
				slices.Sort(tier)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", lt.Path, got, want)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("compared only %d torrents", n)
	}
}

func TestInfoBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "g.torrent")
	os.WriteFile(garbage, []byte("d4:infod"), 0o644)
	for _, args := range [][]string{
		{"info", garbage},
		{"info", filepath.Join(dir, "missing.torrent")},
		{"info", "magnet:?xt=urn:btih:nothex"},
		{"info"},
	} {
		var stdout, stderr bytes.Buffer
		want := 1
		if len(args) == 1 {
			want = 2 // a command line it cannot use, not bad input
		}
		if code := run(args, &stdout, &stderr); code != want {
			t.Errorf("%v: exit %d, want %d", args, code, want)
		}
		if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); args[len(args)-1] != "info" && lines != 0 {
			t.Errorf("%v: error is not one line: %q", args, stderr.String())
		}
	}
}

func TestCreateThenInfo(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "one.bin"), bytes.Repeat([]byte("1"), 100000), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "two.bin"), bytes.Repeat([]byte("2"), 50001), 0o644)
	out := filepath.Join(dir, "data.torrent")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"create", "-piece-length", "32K", "-tracker", "http://127.0.0.1:1/a,http://127.0.0.1:2/a",
		"-tracker", "udp://127.0.0.1:3", "-private", "-o", out, src}, &stdout, &stderr); code != 0 {
		t.Fatalf("create: %d %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"info", "-json", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("info: %d %s", code, stderr.String())
	}
	var got infoJSON
	json.Unmarshal(stdout.Bytes(), &got)
	if got.TotalSize != 150001 || got.PieceLength != 32768 || got.Pieces != 5 || !got.Private ||
		len(got.Trackers) != 2 || len(got.Trackers[0]) != 2 || len(got.Files) != 2 ||
		got.Files[1].Path != "data/sub/two.bin" {
		t.Fatalf("info of created torrent: %+v", got)
	}
}

// -encryption takes prefer, require or disable on every command that
// talks to peers; anything else is a one-line error naming the choices.
func TestEncryptionFlag(t *testing.T) {
	cfg, err := parseServe([]string{"-encryption", "require"}, io.Discard)
	if err != nil || cfg.Encryption.Encryption != netio.EncryptionRequire {
		t.Fatalf("serve -encryption require: %v, %v", cfg, err)
	}
	if cfg, err := parseServe(nil, io.Discard); err != nil || cfg.Encryption.Encryption != netio.EncryptionPrefer {
		t.Fatalf("serve's default: %v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"serve", "-encryption", "on"},
		{"get", "-encryption=maybe", "x.torrent"},
		{"info", "-fetch", "-encryption", "", "magnet:?xt=urn:btih:0000000000000000000000000000000000000000"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (a bad flag)", args, code)
		}
		if !strings.Contains(stderr.String(), "-encryption: want prefer, require or disable") {
			t.Errorf("%v: %q", args, stderr.String())
		}
	}
}
