package metainfo

import (
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// torrentDoc builds a torrent from an info dict given as a map, so each
// validation case changes one thing of an otherwise valid document.
func torrentDoc(t *testing.T, mutate func(info map[string]any)) []byte {
	t.Helper()
	info := map[string]any{
		"name":         "tree",
		"piece length": int64(16384),
		"files": []any{
			map[string]any{"length": int64(20000), "path": []any{"a.bin"}},
			map[string]any{"length": int64(5000), "path": []any{"sub", "b.bin"}},
		},
	}
	info["pieces"] = make([]byte, 2*20)
	mutate(info)
	b, err := Encode(map[string]any{"announce": "http://127.0.0.1:1/a", "info": info})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func file(n int64, path ...any) map[string]any {
	return map[string]any{"length": n, "path": path}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]func(info map[string]any){
		"piece length":      func(i map[string]any) { i["piece length"] = int64(0) },
		"negative pl":       func(i map[string]any) { i["piece length"] = int64(-5) },
		"huge pl":           func(i map[string]any) { i["piece length"] = int64(1 << 40) },
		"missing pl":        func(i map[string]any) { delete(i, "piece length") },
		"pieces not x20":    func(i map[string]any) { i["pieces"] = make([]byte, 39) },
		"pieces count":      func(i map[string]any) { i["pieces"] = make([]byte, 60) },
		"missing pieces":    func(i map[string]any) { delete(i, "pieces") },
		"no files":          func(i map[string]any) { delete(i, "files") },
		"both":              func(i map[string]any) { i["length"] = int64(5) },
		"empty files":       func(i map[string]any) { i["files"] = []any{} },
		"zero total":        func(i map[string]any) { i["files"] = []any{file(0, "a")}; i["pieces"] = []byte{} },
		"dotdot":            func(i map[string]any) { i["files"] = []any{file(20000, ".."), file(5000, "x")} },
		"dot":               func(i map[string]any) { i["files"] = []any{file(20000, "a", "."), file(5000, "x")} },
		"slash":             func(i map[string]any) { i["files"] = []any{file(20000, "a/b"), file(5000, "x")} },
		"absolute":          func(i map[string]any) { i["files"] = []any{file(20000, "/etc"), file(5000, "x")} },
		"backslash":         func(i map[string]any) { i["files"] = []any{file(20000, `..\x`), file(5000, "x")} },
		"nul":               func(i map[string]any) { i["files"] = []any{file(20000, "a\x00"), file(5000, "x")} },
		"empty component":   func(i map[string]any) { i["files"] = []any{file(20000, "a", ""), file(5000, "x")} },
		"empty path":        func(i map[string]any) { i["files"] = []any{file(20000), file(5000, "x")} },
		"duplicate":         func(i map[string]any) { i["files"] = []any{file(20000, "x"), file(5000, "x")} },
		"file and folder":   func(i map[string]any) { i["files"] = []any{file(20000, "x"), file(5000, "x", "y")} },
		"negative length":   func(i map[string]any) { i["files"] = []any{file(-1, "x"), file(25001, "y")} },
		"overflow":          func(i map[string]any) { i["files"] = []any{file(1<<62, "x"), file(1<<62, "y")} },
		"bad name":          func(i map[string]any) { i["name"] = "../up" },
		"no name":           func(i map[string]any) { delete(i, "name") },
		"path not list":     func(i map[string]any) { i["files"] = []any{map[string]any{"length": int64(25000), "path": "x"}} },
		"file not dict":     func(i map[string]any) { i["files"] = []any{int64(3)} },
		"component not str": func(i map[string]any) { i["files"] = []any{file(25000, int64(1))} },
	}
	for name, mutate := range cases {
		_, err := Parse(torrentDoc(t, mutate))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", name, err)
		}
	}
	if _, err := Parse(torrentDoc(t, func(map[string]any) {})); err != nil {
		t.Fatalf("the unmutated document must parse: %v", err)
	}
	for _, bad := range []string{"", "le", "i1e", "de", "d4:infoi1ee", "d4:infod", "garbage"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestParseV2Only(t *testing.T) {
	b, err := Encode(map[string]any{"info": map[string]any{
		"name": "x", "piece length": int64(16384), "meta version": int64(2),
		"file tree": map[string]any{"x": map[string]any{"": map[string]any{"length": int64(1)}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(b)
	if !errors.Is(err, ErrV2Only) || !strings.Contains(err.Error(), "v2-only torrents are not supported") {
		t.Fatalf("got %v", err)
	}
}

func TestInfoHashOverRawBytes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "torrents", "unsorted.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	mi, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := RawDictValue(b, "info")
	if mi.InfoHash != sha1.Sum(raw) {
		t.Fatal("infohash is not the SHA-1 of the info bytes as they stand")
	}
	// Re-encoding sorts the keys and so would change the hash: make sure the
	// test input really is one where the difference shows.
	v, _ := Decode(raw)
	reenc, _ := Encode(v)
	if sha1.Sum(reenc) == mi.InfoHash {
		t.Fatal("test torrent has sorted keys; it proves nothing")
	}
	if got := mi.InfoHash.String(); got != "2ed26a322b3d36f589d6a48b9f98183e931df4e6" {
		t.Fatalf("infohash %s, libtorrent computes 2ed26a322b3d36f589d6a48b9f98183e931df4e6", got)
	}
}

func TestParseFields(t *testing.T) {
	b := torrentDoc(t, func(i map[string]any) {
		i["private"] = int64(1)
		i["name.utf-8"] = "tree-utf8"
		i["files"] = []any{
			file(20000, "a.bin"),
			map[string]any{"length": int64(12768), "path": []any{".pad", "12768"}, "attr": "p"},
			file(0, "empty"),
			file(5000, "sub", "b.bin"),
		}
		i["pieces"] = make([]byte, 3*20)
	})
	mi, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !mi.Private || mi.Name != "tree-utf8" || mi.TotalLength != 37768 || mi.NumPieces() != 3 {
		t.Fatalf("got private=%v name=%q total=%d pieces=%d", mi.Private, mi.Name, mi.TotalLength, mi.NumPieces())
	}
	if !mi.Files[1].Pad || mi.Files[0].Pad || mi.Files[3].Offset != 32768 {
		t.Fatalf("files: %+v", mi.Files)
	}
	if len(mi.Trackers) != 1 || mi.Trackers[0][0] != "http://127.0.0.1:1/a" {
		t.Fatalf("trackers %v", mi.Trackers)
	}
	if mi.PieceSize(2) != 37768-2*16384 {
		t.Fatalf("last piece size %d", mi.PieceSize(2))
	}
}

func TestAnnounceListSupersedes(t *testing.T) {
	info := map[string]any{"name": "x", "piece length": int64(16384), "length": int64(1), "pieces": make([]byte, 20)}
	b, _ := Encode(map[string]any{
		"info": info, "announce": "http://127.0.0.1:1/a",
		"announce-list": []any{[]any{"http://127.0.0.1:2/b", "http://127.0.0.1:2/b"}, []any{}, []any{"udp://127.0.0.1:3"}},
		"url-list":      "http://127.0.0.1:4/ws",
	})
	mi, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(mi.Trackers) != 2 || len(mi.Trackers[0]) != 1 || mi.Trackers[1][0] != "udp://127.0.0.1:3" {
		t.Fatalf("tiers %v", mi.Trackers)
	}
	if len(mi.WebSeeds) != 1 {
		t.Fatalf("web seeds %v", mi.WebSeeds)
	}
}

func TestSpans(t *testing.T) {
	mi := &MetaInfo{PieceLength: 10, TotalLength: 35, Files: []File{
		{Path: []string{"a"}, Length: 12},
		{Path: []string{"pad"}, Length: 0, Offset: 12},
		{Path: []string{"b"}, Length: 3, Offset: 12},
		{Path: []string{"c"}, Length: 20, Offset: 15},
	}, Pieces: make([]Hash, 4)}
	got := mi.PieceSpans(1)
	want := []Span{{File: 0, Offset: 10, Length: 2}, {File: 2, Offset: 0, Length: 3}, {File: 3, Offset: 0, Length: 5}}
	if len(got) != len(want) {
		t.Fatalf("spans %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("span %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if last := mi.PieceSpans(3); len(last) != 1 || last[0].Length != 5 || last[0].Offset != 15 {
		t.Fatalf("last piece spans %+v", last)
	}
	if f, l := mi.FilePieces(3); f != 1 || l != 3 {
		t.Fatalf("FilePieces(c) = %d..%d", f, l)
	}
	if f, l := mi.FilePieces(1); f != 0 || l != -1 {
		t.Fatalf("empty file pieces = %d..%d", f, l)
	}
	var sum int64
	for i := range mi.Pieces {
		for _, s := range mi.PieceSpans(i) {
			sum += s.Length
		}
	}
	if sum != mi.TotalLength {
		t.Fatalf("spans cover %d bytes of %d", sum, mi.TotalLength)
	}
}
