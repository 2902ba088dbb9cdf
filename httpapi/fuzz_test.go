package httpapi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// fuzzRoot is a download root with the traps a user could set: a symlink
// out, a dangling symlink out, a file where a folder is expected.
func fuzzRoot(t testing.TB) rootDir {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	rootPath := filepath.Join(base, "root")
	for _, d := range []string{outside, filepath.Join(rootPath, "sub", "deep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(rootPath, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "gone"), filepath.Join(rootPath, "dangle")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(rootPath, "sub"), filepath.Join(rootPath, "inlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootPath, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newRootDir(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkInside fails unless p and every existing ancestor of it resolve,
// symlinks followed, inside the root.
func checkInside(t *testing.T, r rootDir, in, p string) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || !within(r.real, p) {
		t.Fatalf("resolve(%q) = %q: not a clean path inside %s", in, p, r.real)
	}
	for d := p; ; d = filepath.Dir(d) {
		real, err := filepath.EvalSymlinks(d)
		if err == nil {
			if !within(r.real, real) {
				t.Fatalf("resolve(%q) = %q, which is really %q, outside the root", in, p, real)
			}
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("resolve(%q) = %q: %v", in, p, err)
		}
	}
}

func FuzzQuery(f *testing.F) {
	r := fuzzRoot(f)
	for _, s := range []string{"", "0123456789abcdef0123456789ABCDEF01234567", "64", "0", "true", "false",
		"../x", "sub/../../x", "link/a", "dangle/a", "inlink/deep/new", "file/x", r.real + "/sub", r.given + "/../root/sub"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h, err := parseInfoHash(s); err == nil {
			if len(s) != 40 {
				t.Fatalf("infohash %q accepted", s)
			}
			if b, err := hex.DecodeString(s); err != nil || string(b) != string(h[:]) {
				t.Fatalf("infohash %q decoded as %x", s, h)
			}
		}
		if v, err := parseRate("rate", s); err == nil {
			if v < 0 || v%1024 != 0 || v > maxRateKiB<<10 || s == "" {
				t.Fatalf("rate %q accepted as %d bytes/s", s, v)
			}
		}
		if _, err := parseBool("b", s, false); err == nil && s != "" && s != "true" && s != "false" {
			t.Fatalf("bool %q accepted", s)
		}
		if p, err := r.resolve(s); err == nil {
			checkInside(t, r, s, p)
		} else if _, ok := err.(*apiError); !ok {
			t.Fatalf("resolve(%q): %T is not an API error", s, err)
		}
	})
}

func FuzzAddMagnetBody(f *testing.F) {
	const mag = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
	for _, s := range []string{
		`{"url":"` + mag + `","targetdir":"a","maxdown":1,"maxup":2}`,
		`{"url":"` + mag + `"}`, `{}`, `null`, `[]`, `"x"`, ``, `{"url":`, `{"url":1}`,
		`{"url":"` + mag + `","maxdown":-1}`, `{"url":"` + mag + `","maxdown":1e400}`,
		`{"url":"` + mag + `","maxup":4294967297}`, `{"url":"` + mag + `"}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseMagnetBody(b)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("%T is not an API error", err)
			}
			return
		}
		if req.magnet == nil {
			t.Fatal("accepted without a magnet")
		}
		for _, v := range []int64{req.maxDown, req.maxUp} {
			if v < 0 || v%1024 != 0 || v > maxRateKiB<<10 {
				t.Fatalf("rate %d bytes/s accepted", v)
			}
		}
	})
}

func TestPeerIDJSON(t *testing.T) {
	var az [20]byte
	copy(az[:], "-qB4650-abcdefghijkl")
	if got := peerIDJSON(az); got != "-qB4650-abcdefghijkl" {
		t.Errorf("printable id shown as %q", got)
	}
	bin := az
	bin[19] = 0xff
	if got := peerIDJSON(bin); got != hex.EncodeToString(bin[:]) {
		t.Errorf("binary id shown as %q", got)
	}
	if got := peerIDJSON([20]byte{}); got != "" {
		t.Errorf("unknown id shown as %q", got)
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct{ in, want int64 }{{0, 0}, {1023, 0}, {1024, 1}, {1536, 1}, {-5, 0}, {10 << 20, 10240}} {
		if got := kib(tc.in); got != tc.want {
			t.Errorf("kib(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if v, err := parseRate("rate", "64"); err != nil || v != 64<<10 {
		t.Errorf("parseRate(64) = %d, %v", v, err)
	}
}

// FuzzHeaderEnd: the scanner that tells a client still sending its headers
// from one uploading a body reads bytes from anyone. Fed in any chunks, it
// must agree with a plain reading of the whole input: the headers end at
// the first empty line ("\n" or "\r\n") after a line with content.
func FuzzHeaderEnd(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), uint8(3))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\n\n"), uint8(1))
	f.Add([]byte("POST /a HTTP/1.1\r\r\n\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		want := false
		content := false
		for _, line := range bytes.SplitAfter(in, []byte("\n")) {
			if !bytes.HasSuffix(line, []byte("\n")) {
				break // unterminated: not a line yet
			}
			body := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if len(body) == 0 && content {
				want = true
				break
			}
			content = content || len(body) > 0
		}
		var h headerEnd
		got := false
		n := int(step%16) + 1
		for i := 0; i < len(in) && !got; i += n {
			got = h.feed(in[i:min(i+n, len(in))])
		}
		if got != want {
			t.Fatalf("%q in chunks of %d: headers ended %v, want %v", in, n, got, want)
		}
	})
}
