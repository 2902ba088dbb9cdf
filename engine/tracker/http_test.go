package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// httpTracker is an in-test tracker that records each announce query and
// answers with whatever body the test sets.
type httpTracker struct {
	srv *httptest.Server
	mu  sync.Mutex
	raw []string     // raw query strings received
	qs  []url.Values // the server's own parse of them
	// reply builds the body for a parsed query; status 0 means 200.
	reply  func(q url.Values) []byte
	status int
}

func newHTTPTracker(t *testing.T) *httpTracker {
	t.Helper()
	ht := &httpTracker{}
	ht.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ht.mu.Lock()
		ht.raw = append(ht.raw, r.URL.RawQuery)
		ht.qs = append(ht.qs, q)
		reply, status := ht.reply, ht.status
		ht.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
		if reply != nil {
			w.Write(reply(q))
		}
	}))
	t.Cleanup(ht.srv.Close)
	return ht
}

func (ht *httpTracker) last(t *testing.T) (string, url.Values) {
	t.Helper()
	ht.mu.Lock()
	defer ht.mu.Unlock()
	if len(ht.qs) == 0 {
		t.Fatal("tracker received no announce")
	}
	return ht.raw[len(ht.raw)-1], ht.qs[len(ht.qs)-1]
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := metainfo.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c := NewClient(cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

// nastyHashes covers every byte value, plus the characters that break naive
// escaping (space, +, %, &, =, NUL).
func nastyHashes() []metainfo.Hash {
	var hs []metainfo.Hash
	for start := 0; start < 256; start += 20 {
		var h metainfo.Hash
		for i := range h {
			h[i] = byte(start + i)
		}
		hs = append(hs, h)
	}
	var h metainfo.Hash
	copy(h[:], " +%&=\x00\xff?#/~-._aZ09;")
	return append(hs, h)
}

func TestHTTPEscapingRoundTrips(t *testing.T) {
	ht := newHTTPTracker(t)
	ht.reply = func(url.Values) []byte { return mustEncode(t, map[string]any{"interval": 60, "peers": ""}) }
	c := testClient(t, Config{})
	base := ht.srv.URL + "/announce?passkey=ab%2Fcd+ef&x=1"
	for _, h := range nastyHashes() {
		var pid [20]byte
		for i := range pid {
			pid[i] = ^h[19-i]
		}
		req := NewRequest(h, pid, 6881)
		if _, err := c.Announce(context.Background(), base, req); err != nil {
			t.Fatal(err)
		}
		raw, q := ht.last(t)
		if got := q.Get("info_hash"); got != string(h[:]) {
			t.Fatalf("info_hash: server decoded %x, sent %x", got, h[:])
		}
		if got := q.Get("peer_id"); got != string(pid[:]) {
			t.Fatalf("peer_id: server decoded %x, sent %x", got, pid[:])
		}
		if !strings.HasPrefix(raw, "passkey=ab%2Fcd+ef&x=1&") {
			t.Fatalf("existing query not kept verbatim: %q", raw)
		}
		if strings.Count(raw, "info_hash=") != 1 {
			t.Fatalf("info_hash sent %d times", strings.Count(raw, "info_hash="))
		}
		// Every character of the escaped values is unreserved or an escape.
		for _, field := range strings.Split(raw, "&")[2:4] {
			val := field[strings.IndexByte(field, '=')+1:]
			for i := 0; i < len(val); i++ {
				if c := val[i]; !isUnreserved(c) && c != '%' {
					t.Fatalf("%q contains unescaped byte %q", field, c)
				}
			}
		}
	}
}

func TestHTTPAnnounceParams(t *testing.T) {
	ht := newHTTPTracker(t)
	ht.reply = func(url.Values) []byte { return mustEncode(t, map[string]any{"interval": 60, "peers": ""}) }
	c := testClient(t, Config{})
	req := NewRequest(metainfo.Hash{1, 2, 3}, [20]byte{'-', 'G', 'T'}, 51413)
	req.Uploaded, req.Downloaded, req.Left = 1000, 2000, -5
	req.NumWant, req.Key = 80, 0xdeadbeef
	req.TrackerID = "tid 1&2"
	req.IP = netip.MustParseAddr("2001:db8::1")
	for _, ev := range []Event{None, Started, Completed, Stopped} {
		req.Event = ev
		if _, err := c.Announce(context.Background(), ht.srv.URL+"/announce#frag", req); err != nil {
			t.Fatal(err)
		}
		_, q := ht.last(t)
		want := map[string]string{
			"port": "51413", "uploaded": "1000", "downloaded": "2000", "left": "0",
			"compact": "1", "numwant": "80", "key": "deadbeef", "event": ev.String(),
			"trackerid": "tid 1&2", "ip": "2001:db8::1",
		}
		for k, v := range want {
			if got := q.Get(k); got != v {
				t.Errorf("event %v: %s = %q, want %q", ev, k, got, v)
			}
		}
		if _, has := q["event"]; has != (ev != None) {
			t.Errorf("event %v: event parameter present=%v", ev, has)
		}
	}
	req.NumWant, req.Compact = 0, false
	if _, err := c.Announce(context.Background(), ht.srv.URL, req); err != nil {
		t.Fatal(err)
	}
	if _, q := ht.last(t); q.Has("numwant") || q.Get("compact") != "0" {
		t.Errorf("zero NumWant/Compact: numwant present=%v compact=%q", q.Has("numwant"), q.Get("compact"))
	}
}

func TestHTTPReplies(t *testing.T) {
	v4a := netip.MustParseAddrPort("10.0.0.1:6881")
	v4b := netip.MustParseAddrPort("192.168.1.2:51413")
	v6a := netip.MustParseAddrPort("[2001:db8::5]:7000")
	pid := strings.Repeat("P", 20)
	tests := []struct {
		name    string
		body    map[string]any
		peers   []netip.AddrPort
		seeders int
		warning string
		ids     int
	}{
		{"compact", map[string]any{"interval": 1800, "min interval": 900, "complete": 3, "incomplete": 4,
			"peers": string(appendCompact(nil, []netip.AddrPort{v4a, v4b}, false))},
			[]netip.AddrPort{v4a, v4b}, 3, "", 0},
		{"compact with port 0 and duplicates", map[string]any{"interval": 60,
			"peers": string(appendCompact(nil, []netip.AddrPort{v4a, netip.MustParseAddrPort("1.2.3.4:0"), v4a}, false))},
			[]netip.AddrPort{v4a}, -1, "", 0},
		{"dict form", map[string]any{"interval": 60, "complete": 0, "peers": []any{
			map[string]any{"ip": "10.0.0.1", "port": 6881, "peer id": pid},
			map[string]any{"ip": "2001:db8::5", "port": 7000},
			map[string]any{"ip": "tracker.example", "port": 1}, // host name: skipped
			map[string]any{"ip": "10.9.9.9", "port": 0},        // port 0: skipped
			map[string]any{"ip": "10.9.9.9", "port": 70000},    // out of range
			map[string]any{"ip": 5, "port": 1},                 // wrong type
			"not a dict",
		}}, []netip.AddrPort{v4a, v6a}, 0, "", 1},
		{"peers6 merged", map[string]any{"interval": 60, "warning message": "slow down",
			"peers":  string(appendCompact(nil, []netip.AddrPort{v4b}, false)),
			"peers6": string(appendCompact(nil, []netip.AddrPort{v6a}, true))},
			[]netip.AddrPort{v4b, v6a}, -1, "slow down", 0},
		{"no peers at all", map[string]any{"interval": 60}, nil, -1, "", 0},
	}
	ht := newHTTPTracker(t)
	c := testClient(t, Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ht.reply = func(url.Values) []byte { return mustEncode(t, tc.body) }
			resp, err := c.Announce(context.Background(), ht.srv.URL, NewRequest(metainfo.Hash{9}, [20]byte{}, 1))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Peers) != len(tc.peers) {
				t.Fatalf("peers = %v, want %v", resp.Peers, tc.peers)
			}
			for i := range tc.peers {
				if resp.Peers[i] != tc.peers[i] {
					t.Fatalf("peers = %v, want %v", resp.Peers, tc.peers)
				}
			}
			if resp.Seeders != tc.seeders || resp.Warning != tc.warning || len(resp.PeerIDs) != tc.ids {
				t.Errorf("seeders %d warning %q ids %d", resp.Seeders, resp.Warning, len(resp.PeerIDs))
			}
			if tc.ids > 0 && resp.PeerIDs[v4a] != [20]byte([]byte(pid)) {
				t.Errorf("peer id of %v = %q", v4a, resp.PeerIDs[v4a])
			}
		})
	}
	ht.reply = func(url.Values) []byte {
		return mustEncode(t, map[string]any{"interval": 1800, "min interval": 900, "tracker id": "T1"})
	}
	resp, err := c.Announce(context.Background(), ht.srv.URL, AnnounceRequest{})
	if err != nil || resp.Interval != 30*time.Minute || resp.MinInterval != 15*time.Minute || resp.TrackerID != "T1" {
		t.Fatalf("intervals/tracker id: %+v %v", resp, err)
	}
}

func TestHTTPFailuresAndGarbage(t *testing.T) {
	ht := newHTTPTracker(t)
	c := testClient(t, Config{MaxResponseSize: 4096})
	tests := []struct {
		name   string
		body   []byte
		status int
		want   error
	}{
		{"failure reason", mustEncode(t, map[string]any{"failure reason": "unregistered torrent", "interval": 60}), 0, ErrTrackerFailure},
		{"failure reason with 403", mustEncode(t, map[string]any{"failure reason": "bad passkey"}), 403, ErrTrackerFailure},
		{"404 without reason", []byte("not found"), 404, ErrBadResponse},
		{"truncated bencode", []byte("d8:intervali60e5:peers12:abc"), 0, ErrBadResponse},
		{"html", []byte("<html>hi</html>"), 0, ErrBadResponse},
		{"empty body", nil, 0, ErrBadResponse},
		{"list not dict", []byte("li1ee"), 0, ErrBadResponse},
		{"compact not multiple of 6", mustEncode(t, map[string]any{"peers": strings.Repeat("x", 3001)}), 0, ErrBadResponse},
		{"peers6 not multiple of 18", mustEncode(t, map[string]any{"peers6": strings.Repeat("x", 20)}), 0, ErrBadResponse},
		{"peers wrong type", mustEncode(t, map[string]any{"peers": 5}), 0, ErrBadResponse},
		{"peers6 wrong type", mustEncode(t, map[string]any{"peers6": []any{}}), 0, ErrBadResponse},
		{"interval string", mustEncode(t, map[string]any{"interval": "60"}), 0, ErrBadResponse},
		{"negative interval", mustEncode(t, map[string]any{"interval": -1}), 0, ErrBadResponse},
		{"complete string", mustEncode(t, map[string]any{"complete": "3"}), 0, ErrBadResponse},
		{"failure reason int", mustEncode(t, map[string]any{"failure reason": 1}), 0, ErrBadResponse},
		{"deep nesting", []byte("d1:x" + strings.Repeat("l", 50) + strings.Repeat("e", 50) + "e"), 0, ErrBadResponse},
		{"huge body", mustEncode(t, map[string]any{"peers": strings.Repeat("x", 6000)}), 0, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ht.reply = func(url.Values) []byte { return tc.body }
			ht.status = tc.status
			_, err := c.Announce(context.Background(), ht.srv.URL, AnnounceRequest{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	ht.status = 0
	ht.reply = func(url.Values) []byte {
		return mustEncode(t, map[string]any{"failure reason": "no\x00such\ntorrent"})
	}
	_, err := c.Announce(context.Background(), ht.srv.URL, AnnounceRequest{})
	te, ok := errors.AsType[*TrackerError](err)
	if !ok || te.Reason != "no such torrent" {
		t.Fatalf("want TrackerError with cleaned reason, got %#v", err)
	}
}

func TestHTTPTimeoutAndURLErrors(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c := testClient(t, Config{HTTPTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Announce(context.Background(), srv.URL+"/announce?passkey=SECRET", AnnounceRequest{})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want ErrTimeout", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks the passkey: %v", err)
	}
	for raw, want := range map[string]error{
		"wss://tracker.example/announce": ErrUnsupportedScheme,
		"http:///announce":               ErrBadURL,
		"udp://127.0.0.1/announce":       ErrBadURL, // no port
		"udp://127.0.0.1:0":              ErrBadURL,
		"%zz":                            ErrBadURL,
	} {
		if _, err := c.Announce(context.Background(), raw, AnnounceRequest{}); !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", raw, err, want)
		}
	}
}
