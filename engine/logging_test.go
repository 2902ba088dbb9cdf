package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/wire"
)

// lockedBuf is a log destination the test reads while runners write.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records decodes the JSON lines written so far.
func (l *lockedBuf) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func (l *lockedBuf) matching(t *testing.T, msg string) []map[string]any {
	var out []map[string]any
	for _, m := range l.records(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestLogBanErrorRemoveOnce: a peer banned for abuse is one warn line
// naming it and why; a torrent entering state error one error line with
// the message; a removal one info line saying whether data was deleted.
func TestLogBanErrorRemoveOnce(t *testing.T) {
	f := newFixture(t, true)
	buf := &lockedBuf{}
	logger := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Set on the session's thread, the only one logging from now on.
	f.s.post(evFunc(func(s *Session) { s.c.log = logger }))
	f.sync()

	addr := netip.MustParseAddrPort("10.9.9.9:5000")
	for round := 1; round <= strikesToBan; round++ {
		fc, h := f.attachAt(addr, byte(round))
		f.deliver(h, extHandshake(t))
		req := ext.AppendMetadataMsg(nil, ext.MetadataMsg{Type: ext.MetadataRequest, Piece: 0})
		for range 1000 {
			if fc.isClosed() {
				break
			}
			f.deliver(h, wire.Message{Type: wire.Extended, ExtID: extMetadata, ExtPayload: req})
		}
	}
	if !f.c.Banned(addr) {
		t.Fatal("not banned")
	}
	bans := buf.matching(t, "peer banned")
	if len(bans) != 1 || bans[0]["level"] != "WARN" || bans[0]["peer"] != addr.String() ||
		bans[0]["infohash"] != f.mi.InfoHash.String() || bans[0]["reason"] == "" {
		t.Fatalf("ban lines: %v", bans)
	}
	if drops := buf.matching(t, "peer dropped"); len(drops) < strikesToBan || drops[0]["level"] != "DEBUG" {
		t.Fatalf("drops at debug: %v", drops)
	}

	f.s.post(evFunc(func(s *Session) { s.setError(errors.New("engine: fx.bin: no space left on device")) }))
	f.sync()
	errs := buf.matching(t, "torrent error")
	if len(errs) != 1 || errs[0]["level"] != "ERROR" || errs[0]["error"] != "engine: fx.bin: no space left on device" ||
		errs[0]["state"] != "seeding" {
		t.Fatalf("error lines: %v", errs)
	}

	if err := f.c.Remove(f.mi.InfoHash, false); err != nil {
		t.Fatal(err)
	}
	rm := buf.matching(t, "torrent removed")
	if len(rm) != 1 || rm[0]["level"] != "INFO" || rm[0]["deleted_data"] != false || rm[0]["name"] != "fx.bin" {
		t.Fatalf("removed lines: %v", rm)
	}
}
