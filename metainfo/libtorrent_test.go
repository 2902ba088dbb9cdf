package metainfo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ltView is how libtorrent (through testdata/lt.py) sees a torrent.
type ltView struct {
	Path        string   `json:"path"`
	Error       string   `json:"error"`
	InfoHash    string   `json:"infohash"`
	Name        string   `json:"name"`
	PieceLength int64    `json:"piece_length"`
	NumPieces   int      `json:"num_pieces"`
	TotalSize   int64    `json:"total_size"`
	Private     bool     `json:"private"`
	Trackers    [][]any  `json:"trackers"`
	WebSeeds    []string `json:"web_seeds"`
	Files       []struct {
		Path   string `json:"path"`
		Length int64  `json:"length"`
		Pad    bool   `json:"pad"`
	} `json:"files"`
}

func readLtViews(t *testing.T, r *bytes.Reader) map[string]ltView {
	t.Helper()
	views := map[string]ltView{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v ltView
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("bad libtorrent line %q: %v", sc.Text(), err)
		}
		views[filepath.Base(v.Path)] = v
	}
	return views
}

// compareWithLibtorrent checks every field `info` prints against libtorrent.
func compareWithLibtorrent(t *testing.T, name string, mi *MetaInfo, lt ltView) {
	t.Helper()
	check := func(field string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s = %v, libtorrent says %v", name, field, got, want)
		}
	}
	check("infohash", mi.InfoHash.String(), lt.InfoHash)
	check("name", mi.Name, lt.Name)
	check("piece length", mi.PieceLength, lt.PieceLength)
	check("pieces", mi.NumPieces(), lt.NumPieces)
	check("total size", mi.TotalLength, lt.TotalSize)
	check("private", mi.Private, lt.Private)
	tr := [][]any{}
	if lt.Trackers == nil {
		lt.Trackers = [][]any{}
	}
	for tier, urls := range mi.Trackers {
		for _, u := range urls {
			tr = append(tr, []any{float64(tier), u})
		}
	}
	sortTrackers(tr)
	sortTrackers(lt.Trackers)
	check("trackers", tr, lt.Trackers)
	ws := lt.WebSeeds
	if ws == nil {
		ws = []string{}
	}
	check("web seeds", append([]string{}, mi.WebSeeds...), ws)
	if len(mi.Files) != len(lt.Files) {
		t.Fatalf("%s: %d files, libtorrent has %d", name, len(mi.Files), len(lt.Files))
	}
	for i, f := range mi.Files {
		p := strings.Join(f.Path, "/")
		if !mi.SingleFile {
			p = mi.Name + "/" + p
		}
		check("file path", p, lt.Files[i].Path)
		check("file length", f.Length, lt.Files[i].Length)
		check("file pad", f.Pad, lt.Files[i].Pad)
	}
}

// sortTrackers orders within a tier: libtorrent may shuffle a tier's URLs.
func sortTrackers(tr [][]any) {
	for i := 1; i < len(tr); i++ {
		for j := i; j > 0 && trackerLess(tr[j], tr[j-1]); j-- {
			tr[j], tr[j-1] = tr[j-1], tr[j]
		}
	}
}

func trackerLess(a, b []any) bool {
	if a[0].(float64) != b[0].(float64) {
		return a[0].(float64) < b[0].(float64)
	}
	return a[1].(string) < b[1].(string)
}

// TestGoldenLibtorrent parses committed torrents made by mktorrent and by
// libtorrent, and compares with what libtorrent printed for them.
func TestGoldenLibtorrent(t *testing.T) {
	dir := filepath.Join("testdata", "torrents")
	golden, err := os.ReadFile(filepath.Join(dir, "libtorrent.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	views := readLtViews(t, bytes.NewReader(golden))
	if len(views) < 6 {
		t.Fatalf("only %d golden views", len(views))
	}
	for name, lt := range views {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		mi, err := Parse(b)
		if lt.InfoHash == strings.Repeat("0", 40) { // libtorrent: no v1 part
			if !errors.Is(err, ErrV2Only) {
				t.Errorf("%s: v2-only torrent gave %v, want ErrV2Only", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		compareWithLibtorrent(t, name, mi, lt)
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		loudSkip(t, name)
	}
	return p
}

func requireLibtorrent(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import libtorrent").Run(); err != nil {
		loudSkip(t, "python3-libtorrent")
	}
}

// loudSkip also writes to stderr: go test prints Skip messages only with -v.
func loudSkip(t *testing.T, tool string) {
	t.Helper()
	msg := fmt.Sprintf("SKIP (tool missing): %s: %s is not installed; CI installs it (.ci/run)", t.Name(), tool)
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// writeTree makes a folder whose file sizes do not divide any piece length,
// with nesting and an empty file, from a seeded generator.
func writeTree(t *testing.T, root string, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	sizes := map[string]int{
		"a.bin": 1000003, "sub/b.bin": 70001, "sub/deeper/c.txt": 3,
		"z.dat": 262144 + 17, "sub/empty": 0,
	}
	for p, n := range sizes {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(full, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLiveAgainstLibtorrent makes fresh torrents with mktorrent, libtorrent
// and our Create, and checks that libtorrent reads each exactly as we do.
func TestLiveAgainstLibtorrent(t *testing.T) {
	mk := requireTool(t, "mktorrent")
	requireLibtorrent(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "tree")
	writeTree(t, src, 7)
	single := filepath.Join(dir, "single.dat")
	if err := os.WriteFile(single, bytes.Repeat([]byte("gts"), 99999), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	out := func(n string) string { return filepath.Join(dir, n) }
	run(mk, "-a", "http://127.0.0.1:1/a", "-a", "udp://127.0.0.1:2,http://127.0.0.1:3/b", "-p", "-l", "16", "-o", out("mk-tree.torrent"), src)
	run(mk, "-w", "http://127.0.0.1:4/ws", "-l", "15", "-o", out("mk-single.torrent"), single)
	for _, mode := range []string{"hybrid", "v1", "v2"} {
		run("/usr/bin/python3", "testdata/lt.py", "create", mode, src, out("lt-"+mode+".torrent"))
	}
	for name, path := range map[string]string{"ours-tree.torrent": src, "ours-single.torrent": single} {
		b, err := Create(path, CreateOptions{PieceLength: 32 << 10, Trackers: [][]string{{"http://127.0.0.1:5/x"}}, Private: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths, _ := filepath.Glob(out("*.torrent"))
	js, err := exec.Command("/usr/bin/python3", append([]string{"testdata/lt.py", "info"}, paths...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	views := readLtViews(t, bytes.NewReader(js))
	if len(views) != 7 {
		t.Fatalf("libtorrent described %d torrents, want 7", len(views))
	}
	for name, lt := range views {
		b, _ := os.ReadFile(out(name))
		mi, err := Parse(b)
		if name == "lt-v2.torrent" {
			if !errors.Is(err, ErrV2Only) {
				t.Errorf("%s: got %v, want ErrV2Only", name, err)
			}
			continue
		}
		if lt.Error != "" || err != nil {
			t.Errorf("%s: libtorrent error %q, ours %v", name, lt.Error, err)
			continue
		}
		compareWithLibtorrent(t, name, mi, lt)
	}
}
