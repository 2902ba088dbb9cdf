package webseed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// multi is a three-file torrent with a pad file between the first two.
func multi() *metainfo.MetaInfo {
	mi := &metainfo.MetaInfo{Name: "My Folder", PieceLength: 16, Files: []metainfo.File{
		{Path: []string{"a b", "x?y#1%.bin"}, Length: 10},
		{Path: []string{".pad", "6"}, Length: 6, Offset: 10, Pad: true},
		{Path: []string{"empty"}, Length: 0, Offset: 16},
		{Path: []string{"c.bin"}, Length: 20, Offset: 16},
	}}
	mi.TotalLength = 36
	return mi
}

func single(name string) *metainfo.MetaInfo {
	return &metainfo.MetaInfo{Name: name, SingleFile: true, PieceLength: 16, TotalLength: 5,
		Files: []metainfo.File{{Path: []string{name}, Length: 5}}}
}

func mustServer(t *testing.T, raw string) *Server {
	t.Helper()
	s, err := ParseServer(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileURL(t *testing.T) {
	cases := []struct {
		base string
		mi   *metainfo.MetaInfo
		file int
		want string
	}{
		{"http://h/files/data.iso", single("d.iso"), 0, "http://h/files/data.iso"},
		{"http://h/files/", single("d 1.iso"), 0, "http://h/files/d%201.iso"},
		{"https://h:8443", single("d.iso"), 0, "https://h:8443/d.iso"},
		{"http://h/f/x?sig=a%2Fb", single("d.iso"), 0, "http://h/f/x?sig=a%2Fb"},
		{"http://h/root", multi(), 0, "http://h/root/My%20Folder/a%20b/x%3Fy%231%25.bin"},
		{"http://h/root/", multi(), 3, "http://h/root/My%20Folder/c.bin"},
		{"http://h/my%20root/?k=v", multi(), 3, "http://h/my%20root/My%20Folder/c.bin?k=v"},
		{"http://h/a#frag", single("d"), 0, "http://h/a"},
	}
	for _, c := range cases {
		if got := mustServer(t, c.base).FileURL(c.mi, c.file); got != c.want {
			t.Errorf("FileURL(%q, file %d) = %q, want %q", c.base, c.file, got, c.want)
		}
	}
}

func TestParseServerRefuses(t *testing.T) {
	for _, raw := range []string{"ftp://h/x", "/relative", "h/x", "http:///x", "http://u:p@h/x", "http://h/%zz", "udp://h:1"} {
		if _, err := ParseServer(raw); !errors.Is(err, ErrBadURL) {
			t.Errorf("ParseServer(%q) = %v, want ErrBadURL", raw, err)
		}
	}
}

func TestPlanAcrossFiles(t *testing.T) {
	mi := multi()
	s := mustServer(t, "http://h/")
	got := s.Plan(mi, 4, 20)
	want := []Part{
		{URL: "http://h/My%20Folder/a%20b/x%3Fy%231%25.bin", Offset: 4, Length: 6, FileLength: 10},
		{URL: "", Offset: 0, Length: 6, FileLength: 6},
		{URL: "http://h/My%20Folder/c.bin", Offset: 0, Length: 8, FileLength: 20},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Plan = %v\nwant %v", got, want)
	}
}

func TestParseContentRange(t *testing.T) {
	good := []struct {
		in                 string
		first, last, total int64
	}{
		{"bytes 0-9/10", 0, 9, 10},
		{"BYTES 5-5/*", 5, 5, -1},
		{" bytes  100-199/9223372036854775807", 100, 199, 1<<63 - 1},
	}
	for _, c := range good {
		a, b, n, err := ParseContentRange(c.in)
		if err != nil || a != c.first || b != c.last || n != c.total {
			t.Errorf("ParseContentRange(%q) = %d %d %d %v", c.in, a, b, n, err)
		}
	}
	for _, in := range []string{"", "bytes", "bytes */10", "bytes 1-0/10", "bytes 0-10/10", "items 0-1/2",
		"bytes -1-2/3", "bytes 0-1/+3", "bytes 0-9223372036854775808/*", "bytes 0-1", "bytes 0x1-2/3", "bytes 0-1/2/3"} {
		if _, _, _, err := ParseContentRange(in); !errors.Is(err, ErrBadAnswer) {
			t.Errorf("ParseContentRange(%q) = %v, want ErrBadAnswer", in, err)
		}
	}
}

// FuzzContentRange: any header parses to a range that makes sense, or to
// ErrBadAnswer, and never panics.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-5/*", "bytes */10", "bytes 1-0/3", "bytes 0-99999999999999999999/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, err := ParseContentRange(s)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error %v does not wrap ErrBadAnswer", err)
			}
			return
		}
		if first < 0 || last < first || (total != -1 && last >= total) {
			t.Fatalf("%q gave %d-%d/%d", s, first, last, total)
		}
	})
}

func TestHealthBacksOffThenDrops(t *testing.T) {
	var h Health
	now := time.Unix(1000, 0)
	boom := errors.New("webseed: boom")
	for i := 1; i < MaxFailures; i++ {
		epoch := h.Epoch
		h.Failed(now, boom, 0)
		wait := FirstBackoff << (i - 1)
		if h.Status != Backoff || !h.RetryAt.Equal(now.Add(wait)) || h.Epoch == epoch {
			t.Fatalf("failure %d: %v until %v (epoch %d), want backoff for %v", i, h.Status, h.RetryAt, h.Epoch, wait)
		}
		if h.Ready(now.Add(wait - time.Second)) {
			t.Fatalf("failure %d: ready before the backoff ran out", i)
		}
		now = now.Add(wait)
		if !h.Ready(now) || h.Status != Working {
			t.Fatalf("failure %d: not working again after the backoff", i)
		}
	}
	h.Failed(now, boom, 0)
	if h.Status != Dropped || h.Ready(now.Add(24*time.Hour)) || h.LastError != boom.Error() {
		t.Fatalf("after %d failures: %+v, want dropped", MaxFailures, h)
	}
	h.Reset()
	if h.Status != Working || h.Failures != 0 || h.LastError == "" {
		t.Fatalf("after Reset: %+v", h)
	}
}

func TestHealthSuccessForgivesAndRetryAfterCounts(t *testing.T) {
	var h Health
	now := time.Unix(1000, 0)
	h.Failed(now, &StatusError{Code: 503}, 10*time.Minute)
	if !h.RetryAt.Equal(now.Add(10 * time.Minute)) {
		t.Fatalf("Retry-After of 10 min gave a retry at %v", h.RetryAt.Sub(now))
	}
	h.Ready(h.RetryAt)
	h.Failed(now, &StatusError{Code: 503}, 1000*time.Hour)
	if got := h.RetryAt.Sub(now); got != MaxRetryAfter {
		t.Fatalf("huge Retry-After gave %v, want %v", got, MaxRetryAfter)
	}
	h.Ready(h.RetryAt)
	h.Succeeded()
	if h.Failures != 0 {
		t.Fatalf("a success left %d failures", h.Failures)
	}
	h.Failed(now, fmt.Errorf("x: %w", ErrNoRanges), 0)
	if h.Status != Dropped {
		t.Fatalf("a permanent error left the server %v", h.Status)
	}
}

// rangeServer serves files by path with net/http's Range support; hook,
// when set, answers first.
type rangeServer struct {
	files map[string][]byte
	hook  func(w http.ResponseWriter, r *http.Request) bool
	hits  atomic.Int64
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	if s.hook != nil && s.hook(w, r) {
		return
	}
	b, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func newRangeServer(t *testing.T, files map[string][]byte) (*rangeServer, *httptest.Server) {
	rs := &rangeServer{files: files}
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	return rs, srv
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestFetchAcrossFilesAndPad(t *testing.T) {
	a, c := pattern(10, 1), pattern(20, 2)
	_, srv := newRangeServer(t, map[string][]byte{"/My Folder/a b/x?y#1%.bin": a, "/My Folder/c.bin": c})
	s := mustServer(t, srv.URL)
	f := NewFetcher(Config{})
	defer f.Close()
	dst := bytes.Repeat([]byte{0xff}, 30)
	n, err := f.Fetch(context.Background(), s.Plan(multi(), 2, 30), dst)
	want := append(append(append([]byte{}, a[2:]...), make([]byte, 6)...), c[:16]...)
	if err != nil || n != 30 || !bytes.Equal(dst, want) {
		t.Fatalf("Fetch = %d, %v\n got %x\nwant %x", n, err, dst, want)
	}
}

func TestFetchFailures(t *testing.T) {
	file := pattern(1000, 3)
	cases := []struct {
		name string
		hook func(w http.ResponseWriter, r *http.Request) bool
		off  int64
		want error
		n    int
	}{
		{"status 500", func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(500)
			return true
		}, 100, ErrStatus, 0},
		{"ignores Range mid-file", func(w http.ResponseWriter, r *http.Request) bool {
			w.Write(file)
			return true
		}, 100, ErrNoRanges, 0},
		{"wrong Content-Range", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Range", "bytes 0-99/1000")
			w.WriteHeader(206)
			w.Write(file[:100])
			return true
		}, 100, ErrBadAnswer, 0},
		{"other file size", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Range", "bytes 100-199/999")
			w.WriteHeader(206)
			w.Write(file[100:200])
			return true
		}, 100, ErrBadAnswer, 0},
		{"compressed", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Encoding", "gzip")
			return false
		}, 100, ErrBadAnswer, 0},
		{"short body", func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Range", "bytes 100-199/1000")
			w.WriteHeader(206)
			w.Write(file[100:150])
			w.(http.Flusher).Flush()
			hj, _, _ := w.(http.Hijacker).Hijack()
			hj.Close()
			return true
		}, 100, ErrShort, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, srv := newRangeServer(t, map[string][]byte{"/f.bin": file})
			rs.hook = c.hook
			f := NewFetcher(Config{})
			defer f.Close()
			mi := &metainfo.MetaInfo{Name: "f.bin", SingleFile: true, PieceLength: 1000, TotalLength: 1000,
				Files: []metainfo.File{{Path: []string{"f.bin"}, Length: 1000}}}
			dst := make([]byte, 100)
			n, err := f.Fetch(context.Background(), mustServer(t, srv.URL+"/").Plan(mi, c.off, 100), dst)
			if !errors.Is(err, c.want) || n != c.n {
				t.Fatalf("Fetch = %d, %v; want %d, %v", n, err, c.n, c.want)
			}
			if n > 0 && !bytes.Equal(dst[:n], file[c.off:c.off+int64(n)]) {
				t.Fatal("partial bytes differ from the file")
			}
		})
	}
}

// A server that ignores Range is still usable for a range at a file's
// start: only the range is read, not the whole file.
func TestFetchWholeFileAnswerAtStart(t *testing.T) {
	file := pattern(4<<20, 4)
	rs, srv := newRangeServer(t, map[string][]byte{"/f.bin": file})
	rs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", fmt.Sprint(len(file)))
		w.Write(file)
		return true
	}
	mi := &metainfo.MetaInfo{Name: "f.bin", SingleFile: true, PieceLength: 1 << 20, TotalLength: int64(len(file)),
		Files: []metainfo.File{{Path: []string{"f.bin"}, Length: int64(len(file))}}}
	f := NewFetcher(Config{})
	defer f.Close()
	dst := make([]byte, 1000)
	n, err := f.Fetch(context.Background(), mustServer(t, srv.URL+"/f.bin").Plan(mi, 0, 1000), dst)
	if err != nil || n != 1000 || !bytes.Equal(dst, file[:1000]) {
		t.Fatalf("Fetch = %d, %v", n, err)
	}
}

func TestFetchRetryAfter(t *testing.T) {
	rs, srv := newRangeServer(t, nil)
	rs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(503)
		return true
	}
	f := NewFetcher(Config{})
	defer f.Close()
	_, err := f.Fetch(context.Background(), mustServer(t, srv.URL+"/x").Plan(single("x"), 0, 5), make([]byte, 5))
	if RetryAfter(err) != 2*time.Minute || !errors.Is(err, ErrStatus) {
		t.Fatalf("Fetch = %v (retry after %v), want a 503 asking for 2 min", err, RetryAfter(err))
	}
}

func TestFetchStallBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rs, srv := newRangeServer(t, nil)
	rs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Range", "bytes 0-4/5")
			w.WriteHeader(206)
			w.Write([]byte("ab"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	f := NewFetcher(Config{StallTimeout: 150 * time.Millisecond})
	defer f.Close()
	for _, path := range []string{"/headers", "/body"} {
		start := time.Now()
		n, err := f.Fetch(context.Background(), mustServer(t, srv.URL+path).Plan(single("x"), 0, 5), make([]byte, 5))
		if !errors.Is(err, ErrStalled) || time.Since(start) > 3*time.Second {
			t.Fatalf("%s: Fetch = %d, %v after %v, want ErrStalled soon", path, n, err, time.Since(start))
		}
	}
}

func TestFetchRedirectsBounded(t *testing.T) {
	file := pattern(5, 5)
	rs, srv := newRangeServer(t, map[string][]byte{"/r0": file})
	rs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		var k int
		if _, err := fmt.Sscanf(r.URL.Path, "/r%d", &k); err == nil && k > 0 {
			http.Redirect(w, r, fmt.Sprintf("/r%d", k-1), http.StatusFound)
			return true
		}
		return false
	}
	f := NewFetcher(Config{})
	defer f.Close()
	for k, ok := range []bool{true, true, true, true, false} {
		dst := make([]byte, 5)
		_, err := f.Fetch(context.Background(), mustServer(t, fmt.Sprintf("%s/r%d", srv.URL, k)).Plan(single("x"), 0, 5), dst)
		if (err == nil) != ok || (ok && !bytes.Equal(dst, file)) {
			t.Fatalf("%d redirects: %v, want ok=%v", k, err, ok)
		}
	}
}

func TestFetchCancelled(t *testing.T) {
	rs, srv := newRangeServer(t, nil)
	rs.hook = func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}
	f := NewFetcher(Config{})
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := f.Fetch(ctx, mustServer(t, srv.URL+"/x").Plan(single("x"), 0, 5), make([]byte, 5))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStalled) {
		t.Fatalf("Fetch = %v, want context.Canceled", err)
	}
	if !strings.HasPrefix(err.Error(), "webseed: ") {
		t.Fatalf("error %q lacks the package prefix", err)
	}
}
