package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// sseEvent is one dispatched block of a text/event-stream: an event, or a
// comment or retry line alone.
type sseEvent struct {
	id      uint64
	typ     string
	data    map[string]any
	comment string
	retry   string
}

// sseStream reads a GET /events answer on its own goroutine.
type sseStream struct {
	t      *testing.T
	res    *http.Response
	cancel context.CancelFunc
	ch     chan sseEvent
	ended  chan struct{} // closed when the body ends
}

// openEvents opens GET /events with the env's token, extra headers and
// query; the answer's status is the caller's to check.
func (e *env) openEvents(t *testing.T, query string, hdr map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// No client timeout: a stream is long-lived; the context ends it.
	res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &sseStream{t: t, res: res, cancel: cancel, ch: make(chan sseEvent, 1<<16), ended: make(chan struct{})}
	t.Cleanup(st.close)
	if res.StatusCode == http.StatusOK {
		go st.read()
	} else {
		close(st.ended)
	}
	return st
}

func (st *sseStream) close() {
	st.cancel()
	st.res.Body.Close()
}

func (st *sseStream) read() {
	defer close(st.ended)
	br := bufio.NewReader(st.res.Body)
	var ev sseEvent
	var data []string
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				if len(data) > 0 {
					if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev.data); err != nil {
						ev.data = map[string]any{"undecodable": strings.Join(data, "\n")}
					}
				}
				st.ch <- ev
			}
			ev, data, seen = sseEvent{}, nil, false
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.comment = value
		case "id":
			ev.id, _ = strconv.ParseUint(value, 10, 64)
		case "event":
			ev.typ = value
		case "data":
			data = append(data, value)
		case "retry":
			ev.retry = value
		}
	}
}

// next returns the next block, failing the test after a generous wait.
func (st *sseStream) next() sseEvent {
	st.t.Helper()
	select {
	case ev := <-st.ch:
		return ev
	case <-time.After(15 * time.Second):
		st.t.Fatal("no event within 15 s")
	}
	return sseEvent{}
}

// until reads events until one of type typ for torrent ih (zero: a global
// event, without an infohash) and returns every event read, that one last.
func (st *sseStream) until(typ string, ih metainfo.Hash) []sseEvent {
	st.t.Helper()
	var got []sseEvent
	for {
		ev := st.next()
		if ev.typ == "" {
			continue
		}
		got = append(got, ev)
		want := any(ih.String())
		if ih == (metainfo.Hash{}) {
			want = nil
		}
		if ev.typ == typ && ev.data["infohash"] == want {
			return got
		}
	}
}

// events reads the events (comments and retry lines left out) that arrive
// until the stream has been quiet for quiet.
func (st *sseStream) drain(quiet time.Duration) []sseEvent {
	var got []sseEvent
	for {
		select {
		case ev := <-st.ch:
			if ev.typ != "" {
				got = append(got, ev)
			}
		case <-time.After(quiet):
			return got
		}
	}
}

func (st *sseStream) waitEnded(what string) {
	st.t.Helper()
	select {
	case <-st.ended:
	case <-time.After(15 * time.Second):
		st.t.Fatalf("stream not ended: %s", what)
	}
}

func eventTypes(evs []sseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.typ)
	}
	return out
}

// The stream of a real download from a web seed: the stream opens with a
// retry line, then added, states, progress with the torrent's figures, and
// completed; stopping and removing it follow.
func TestEventsStreamDownload(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token = "secret-token" })
	if r := e.doAuth("GET", "/events", nil, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("without the token: %d %s", r.status, r.raw)
	}
	st := e.openEvents(t, "", nil)
	if st.res.StatusCode != http.StatusOK || st.res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", st.res.StatusCode, st.res.Header.Get("Content-Type"))
	}
	if first := st.next(); first.retry == "" {
		t.Fatalf("the stream does not start with a retry line: %+v", first)
	}

	src := t.TempDir()
	folder := makeData(t, src, "ws", 11, 200<<10, 5000)
	files := http.FileServer(http.Dir(src))
	seed := httptest.NewServer(files)
	t.Cleanup(seed.Close)
	raw, err := metainfo.Create(folder, metainfo.CreateOptions{PieceLength: 16 << 10, WebSeeds: []string{seed.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	ih := e.add(raw, url.Values{"maxup": {"64"}})
	evs := st.until("completed", ih)
	if evs[0].typ != "added" || evs[0].data["infohash"] != ih.String() || evs[0].data["name"] != "ws" ||
		evs[0].data["maxup"] != float64(64) || evs[0].data["path"] != e.root {
		t.Fatalf("first event: %+v", evs[0])
	}
	var states []string
	var lastProgress map[string]any
	for i, ev := range evs {
		if i > 0 && ev.id <= evs[i-1].id {
			t.Fatalf("ids do not increase: %v", evs)
		}
		if ev.data["infohash"] != ih.String() {
			t.Fatalf("event of another torrent: %+v", ev)
		}
		switch ev.typ {
		case "state":
			states = append(states, fmt.Sprint(ev.data["old"], ">", ev.data["state"]))
		case "progress":
			lastProgress = ev.data
		}
	}
	if len(states) == 0 || states[len(states)-1] != "downloading>seeding" {
		t.Fatalf("states %v", states)
	}
	size := float64(200<<10 + 5000)
	if lastProgress == nil || lastProgress["progress"] != float64(1) || lastProgress["size"] != size ||
		lastProgress["left"] != float64(0) || lastProgress["downloaded"] != float64(int(size)>>10) {
		t.Fatalf("last progress: %v", lastProgress)
	}
	got, err := os.ReadFile(filepath.Join(e.root, "ws", "f0.bin"))
	want, _ := os.ReadFile(filepath.Join(folder, "f0.bin"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("downloaded file differs: %v", err)
	}

	e.must(e.do("GET", "/setdownrate?infohash="+ih.String()+"&rate=100", nil), http.StatusOK)
	if ev := st.until("settings", ih); ev[len(ev)-1].data["maxdown"] != float64(100) {
		t.Fatalf("settings event: %+v", ev[len(ev)-1])
	}
	e.must(e.do("GET", "/stoptorrent?infohash="+ih.String(), nil), http.StatusOK)
	if ev := st.until("state", ih); ev[len(ev)-1].data["state"] != "stopped" {
		t.Fatalf("after stop: %+v", ev[len(ev)-1])
	}
	e.must(e.do("GET", "/removetorrent?infohash="+ih.String()+"&delete=true", nil), http.StatusOK)
	if ev := st.until("removed", ih); ev[len(ev)-1].data["deleted"] != true {
		t.Fatalf("removed: %+v", ev[len(ev)-1])
	}
}

// A client that reconnects with Last-Event-ID (or ?last_event_id=) gets
// exactly the events it missed, the same a connected one saw; an id the
// server no longer holds gets a reset first.
func TestEventsResumeAfterReconnect(t *testing.T) {
	e := newEnv(t, nil)
	all := e.openEvents(t, "", nil)
	all.next() // retry line
	ih := e.add(newTorrentBytes(t, "resume", 21), url.Values{"start": {"false"}})
	first := e.openEvents(t, "", nil)
	first.next()
	e.must(e.do("GET", "/setdownrate?infohash="+ih.String()+"&rate=1", nil), http.StatusOK)
	seen := first.until("settings", ih)
	first.close()
	last := seen[len(seen)-1].id
	for i := 2; i <= 4; i++ {
		e.must(e.do("GET", fmt.Sprintf("/setdownrate?infohash=%s&rate=%d", ih, i), nil), http.StatusOK)
	}
	e.client.PublishGlobal("settings", map[string]any{"max_down": 7})
	want := all.until("settings", metainfo.Hash{}) // the global one, last
	for len(want) > 0 && want[0].id <= last {
		want = want[1:]
	}
	if len(want) != 4 {
		t.Fatalf("the connected stream saw %v after id %d", eventTypes(want), last)
	}
	for _, how := range []struct {
		query string
		hdr   map[string]string
	}{
		{"", map[string]string{"Last-Event-ID": strconv.FormatUint(last, 10)}},
		{"?last_event_id=" + strconv.FormatUint(last, 10), nil},
		// The header wins over the query an EventSource keeps in its URL.
		{"?last_event_id=1", map[string]string{"Last-Event-ID": strconv.FormatUint(last, 10)}},
	} {
		again := e.openEvents(t, how.query, how.hdr)
		again.next()
		got := again.drain(300 * time.Millisecond)
		again.close()
		if len(got) != len(want) {
			t.Fatalf("%q %v: reconnected stream got %v, want %v", how.query, how.hdr, eventTypes(got), eventTypes(want))
		}
		for i := range got {
			if got[i].id != want[i].id || got[i].typ != want[i].typ || fmt.Sprint(got[i].data) != fmt.Sprint(want[i].data) {
				t.Fatalf("event %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	if want[3].data["max_down"] != float64(7) {
		t.Fatalf("global event's data: %+v", want[3])
	}

	old := e.openEvents(t, "", map[string]string{"Last-Event-ID": "1"})
	old.next()
	if ev := old.next(); ev.typ != "reset" || ev.id != want[3].id || ev.data["reason"] != engine.ResetUnknownID {
		t.Fatalf("a too old id: %+v", ev)
	}
	e.must(e.do("GET", "/setdownrate?infohash="+ih.String()+"&rate=9", nil), http.StatusOK)
	if ev := old.until("settings", ih); len(ev) != 1 || ev[0].data["maxdown"] != float64(9) {
		t.Fatalf("after the reset: %+v", ev)
	}
	if r := e.doAuth("GET", "/events?last_event_id=x", nil, "Bearer "+e.token); r.status != http.StatusBadRequest {
		t.Fatalf("a malformed id: %d %s", r.status, r.raw)
	}
}

// newTorrentBytes is newTorrent's .torrent alone.
func newTorrentBytes(t *testing.T, name string, seed uint64) []byte {
	b, _ := newTorrent(t, name, seed)
	return b
}

// An idle stream carries heartbeat comments; streams are bounded, past the
// bound a JSON 503 with Retry-After; a stream is not paced even when every
// other answer would be refused, and its connection is never taken for an
// idle one.
func TestEventsHeartbeatLimitAndPacing(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.EventHeartbeat = 50 * time.Millisecond
		c.MaxEventStreams = 2
		c.APIRate = 1 // a byte a second: any paced answer waits past 10 s and is refused
		c.Busy = func() bool { return true }
		c.HeaderTimeout = 50 * time.Millisecond
		c.MaxUnprovenConns = 4
	})
	a := e.openEvents(t, "", nil)
	if a.res.StatusCode != http.StatusOK {
		t.Fatalf("a stream under pacing: %d", a.res.StatusCode)
	}
	a.next()
	if ev := a.next(); ev.comment != "heartbeat" {
		t.Fatalf("an idle stream sent %+v", ev)
	}
	b := e.openEvents(t, "", nil)
	b.next()
	c := e.openEvents(t, "", nil)
	if c.res.StatusCode != http.StatusServiceUnavailable || c.res.Header.Get("Retry-After") == "" ||
		c.res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("a third stream: %d %v", c.res.StatusCode, c.res.Header)
	}
	body, _ := io.ReadAll(c.res.Body)
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m["error"] == nil {
		t.Fatalf("503 body %q", body)
	}
	b.close()
	deadline := time.Now().Add(15 * time.Second)
	for e.srv.EventStreams() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams after one closed", e.srv.EventStreams())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Silent connections past the header timeout and the unproven cap are
	// closed around the stream; the stream itself stays.
	var silent []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", e.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		io.Copy(io.Discard, c) // ends when the server closes it
		c.Close()
	}
	e.client.PublishGlobal("settings", map[string]any{"n": 1})
	if evs := a.until("settings", metainfo.Hash{}); evs[len(evs)-1].data["n"] != float64(1) {
		t.Fatalf("after the reaping: %+v", evs)
	}
}

// A client that never reads is dropped once a flush waits past the write
// timeout; its subscription goes with it, so nothing is kept for it.
func TestEventsSlowReaderDropped(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventWriteTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10) // fill up sooner
	}
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for e.client.Subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not subscribe")
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("x", 64<<10)
	deadline = time.Now().Add(60 * time.Second)
	for e.srv.EventStreams() != 0 || e.client.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a reader that never reads is still served: %d streams, %d subscribers",
				e.srv.EventStreams(), e.client.Subscribers())
		}
		for range 16 {
			e.client.PublishGlobal("settings", big)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Others are served as before.
	st := e.openEvents(t, "", nil)
	st.next()
	e.client.PublishGlobal("settings", map[string]any{"after": true})
	st.until("settings", metainfo.Hash{})
}

// Shutdown ends open streams instead of waiting for them.
func TestEventsShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.EventHeartbeat = time.Hour })
	a := e.openEvents(t, "", nil)
	b := e.openEvents(t, "?last_event_id=0", nil)
	a.next()
	b.next()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with streams open: %v", err)
	}
	a.waitEnded("after shutdown")
	b.waitEnded("after shutdown")
	if n := e.client.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after shutdown", n)
	}
}
