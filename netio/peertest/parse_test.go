package peertest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

var testHash = metainfo.Hash{0x51, 0x24, 0x4c, 0xd5, 0x2c, 0x4c, 0x03, 0xda, 0x7b, 0x99, 0x5c, 0xc2, 0xd7, 0x62, 0x9e, 0x7b, 0xaa, 0x14, 0xfe, 0x0b}

// scrapeReply builds a scrape answer shaped like opentracker's.
func scrapeReply(h metainfo.Hash, complete, incomplete int64) []byte {
	b, err := metainfo.Encode(map[string]any{"files": map[string]any{
		string(h[:]): map[string]any{"complete": complete, "downloaded": int64(0), "incomplete": incomplete},
	}})
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseScrape(t *testing.T) {
	other := testHash
	other[0] ^= 1
	for _, tc := range []struct {
		name        string
		body        []byte
		seed, leech int
		wantErr     bool
	}{
		{"counts", scrapeReply(testHash, 3, 7), 3, 7, false},
		{"swarm absent", scrapeReply(other, 3, 7), 0, 0, false},
		{"empty files", []byte("d5:filesdee"), 0, 0, false},
		{"failure", []byte("d14:failure reason9:forbiddene"), 0, 0, true},
		{"no files", []byte("de"), 0, 0, true},
		{"negative", scrapeReply(testHash, -1, 0), 0, 0, true},
		{"count is a string", []byte("d5:filesd20:" + string(testHash[:]) + "d8:complete1:110:incompletei0eeee"), 0, 0, true},
		{"entry is a list", []byte("d5:filesd20:" + string(testHash[:]) + "leee"), 0, 0, true},
		{"truncated", scrapeReply(testHash, 1, 1)[:30], 0, 0, true},
		{"not bencode", []byte("<html>"), 0, 0, true},
	} {
		s, l, err := parseScrape(tc.body, testHash)
		if (err != nil) != tc.wantErr || s != tc.seed || l != tc.leech {
			t.Errorf("%s: got %d, %d, %v; want %d, %d, error %v", tc.name, s, l, err, tc.seed, tc.leech, tc.wantErr)
		}
	}
}

func TestAnnounceError(t *testing.T) {
	ok := []byte("d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e")
	if err := announceError(ok); err != nil {
		t.Errorf("plain reply: %v", err)
	}
	failure, _ := metainfo.Encode(map[string]any{"failure reason": "Requested download is not authorized for use with this tracker."})
	err := announceError(failure)
	if err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("failure reply: err = %v, want the reason quoted", err)
	}
	for _, bad := range []string{"", "i1e", "l0:e", "d8:intervali1800e"} {
		if announceError([]byte(bad)) == nil {
			t.Errorf("%q accepted as an announce reply", bad)
		}
	}
}

func TestEscapeBytes(t *testing.T) {
	in := []byte{'a', 'Z', '0', '-', '.', '_', '~', ' ', '+', '%', '&', 0, 0xff}
	got := escapeBytes(in)
	if got != "aZ0-._~%20%2B%25%26%00%FF" {
		t.Errorf("escapeBytes = %q", got)
	}
}

func TestScanOutput(t *testing.T) {
	// transmission-cli redraws its status with '\r' and pads it with
	// blanks; log lines end with '\n' in between.
	in := "start\n\rProgress: 1.0%   \rProgress: 2.0%    [log] State changed\n\r\rSeeding, uploading   \r\n\ntail"
	var got []string
	scanOutput(strings.NewReader(in), func(l string) { got = append(got, l) })
	want := []string{"start", "Progress: 1.0%", "Progress: 2.0%    [log] State changed", "Seeding, uploading", "tail"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestDoneMarkers(t *testing.T) {
	for _, tc := range []struct {
		line string
		f    func(string) bool
		want bool
	}{
		{"11/25 00:59:21 [NOTICE] Download complete: /tmp/x/payload", aria2Done, true},
		{"[#6f6de4 SEED(0.0) CN:2 SD:0]", aria2Done, true},
		{"[#6f6de4 0B/8.0MiB(0%) CN:3 SD:0 DL:0B]", aria2Done, false},
		{"11/25 00:59:20 [NOTICE] Seeding is over.", aria2Done, false},
		{"Seeding, uploading to 0 of 0 peer(s), 0 kB/s [0.00]", transmissionDone, true},
		{`Progress: 99.9% [2026-11-25 00:59:44.164] data: State changed from "Incomplete" to "Complete"`, transmissionDone, true},
		{"Progress: 0.0%, dl from 0 of 1 peers (0 kB/s), ul to 0 (0 kB/s) [None]", transmissionDone, false},
		{"Verifying local files (12.50%, 12.50% valid)", transmissionDone, false},
	} {
		if got := tc.f(tc.line); got != tc.want {
			t.Errorf("%q: done = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// FuzzTrackerReply feeds arbitrary bytes to the tracker reply parsers:
// they must never panic, and a scrape they accept must hold the counts.
func FuzzTrackerReply(f *testing.F) {
	f.Add(scrapeReply(testHash, 1, 2))
	f.Add([]byte("d14:failure reason9:forbiddene"))
	f.Add([]byte("d5:filesd20:" + string(testHash[:]) + "d8:completei99999999999999999999e10:incompletei0eeee"))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		announceError(body)
		s, l, err := parseScrape(body, testHash)
		if err == nil && (s < 0 || l < 0) {
			t.Fatalf("accepted negative counts %d, %d", s, l)
		}
		if err == nil && s+l > 0 {
			again := scrapeReply(testHash, int64(s), int64(l))
			if s2, l2, err := parseScrape(again, testHash); err != nil || s2 != s || l2 != l {
				t.Fatalf("re-encoded scrape: %d, %d, %v; want %d, %d", s2, l2, err, s, l)
			}
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("parser modified its input")
		}
	})
}

// FuzzScanOutput checks the output splitter against a direct definition:
// the pieces between '\r' and '\n', trailing blanks trimmed, empty ones
// dropped.
func FuzzScanOutput(f *testing.F) {
	f.Add([]byte("a\r\nb  \rc\n\n"))
	f.Add([]byte("\r\r\r"))
	f.Add([]byte("no newline at all \t"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []string
		scanOutput(bytes.NewReader(in), func(l string) { got = append(got, l) })
		var want []string
		for _, piece := range strings.FieldsFunc(string(in), func(r rune) bool { return r == '\r' || r == '\n' }) {
			if p := strings.TrimRight(piece, " \t"); p != "" {
				want = append(want, p)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("lines = %q, want %q", got, want)
		}
	})
}

func TestParseLTProgress(t *testing.T) {
	pr, ok := parseLTProgress("PROGRESS 1764621257.250 786432 1048576 16384 3")
	want := LTProgress{At: time.Unix(1764621257, 250e6), Done: 786432, Received: 1048576, Sent: 16384, Peers: 3}
	if !ok || pr.Done != want.Done || pr.Received != want.Received || pr.Sent != want.Sent || pr.Peers != want.Peers ||
		pr.At.Sub(want.At).Abs() > time.Millisecond {
		t.Errorf("parsed %+v, %v; want %+v", pr, ok, want)
	}
	for _, bad := range []string{"PROGRESS", "PROGRESS 1.5 1 2 3", "PROGRESS x 1 2 3 4", "PROGRESS -1 1 2 3 4", "STATUS seeding 1.0000 0 0 1"} {
		if _, ok := parseLTProgress(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
