package peertest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// OpentrackerPath is the Debian package's binary (whitelist build).
const OpentrackerPath = "/usr/bin/opentracker"

// Tracker is a running opentracker. Its fields are read-only; its methods
// may be called from any goroutine.
type Tracker struct {
	HTTPURL string // http://127.0.0.1:P/announce
	UDPURL  string // udp://127.0.0.1:Q/announce
	Proc    *Proc
	scrape  string // http://127.0.0.1:P/scrape
}

// Opentracker starts opentracker on 127.0.0.1 serving infohashes, and
// returns once it really answers announces for them. It skips tb when the
// binary is missing or the test does not run as root.
//
// Settings, and why:
//   - -i 127.0.0.1 -p P -P Q: loopback only, on a free TCP port P (HTTP)
//     and a free UDP port Q. The ports are picked then released before
//     opentracker binds them; a clash is unlikely but possible.
//   - -d <temp dir> -w access.whitelist: the Debian build is the whitelist
//     build, it chroots into its -d directory (hence root) and reads the
//     whitelist relative to it, then drops to "nobody" (hence the 0755
//     directory and 0644 file). Every listed hash is served, nothing else.
//   - -A 127.0.0.1: blesses loopback as an admin address, so tests may read
//     http://127.0.0.1:P/stats (403 for anyone else).
//
// opentracker opens its ports before a separate thread has loaded the
// whitelist, and until then refuses every hash. So a port that accepts is
// not enough: Opentracker announces each hash over HTTP (event=stopped,
// which leaves no peer behind) until the answer is not a failure.
//
// The process is stopped by PID (its process group) when tb ends. Once it
// has dropped privileges the kernel no longer kills it if the test binary
// dies, so only that cleanup ends it. Call from the test's goroutine: it
// may skip or fail tb.
func Opentracker(tb testing.TB, infohashes ...metainfo.Hash) *Tracker {
	tb.Helper()
	if _, err := os.Stat(OpentrackerPath); err != nil {
		tb.Skip("SKIP (tool missing): opentracker is not installed at " + OpentrackerPath)
	}
	if os.Geteuid() != 0 {
		tb.Skip("SKIP (needs root): opentracker chroots into its -d directory")
	}
	if len(infohashes) == 0 {
		tb.Fatal("peertest: Opentracker needs at least one infohash to whitelist")
	}
	dir := tb.TempDir()
	var wl strings.Builder
	for _, h := range infohashes {
		wl.WriteString(h.String() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "access.whitelist"), []byte(wl.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tcpPort, udpPort := FreePort(tb), freeUDPPort(tb)
	p := Start(tb, OpentrackerPath, "-i", "127.0.0.1", "-p", fmt.Sprint(tcpPort), "-P", fmt.Sprint(udpPort),
		"-d", dir, "-A", "127.0.0.1", "-w", "access.whitelist")
	p.Port = tcpPort
	base := fmt.Sprintf("http://127.0.0.1:%d", tcpPort)
	t := &Tracker{
		HTTPURL: base + "/announce",
		UDPURL:  fmt.Sprintf("udp://127.0.0.1:%d/announce", udpPort),
		Proc:    p,
		scrape:  base + "/scrape",
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range infohashes {
		for {
			err := t.probe(h)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("peertest: opentracker never served %s: %v; output:\n%s", h, err, p.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return t
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

// probe announces h with event=stopped and fails unless the tracker
// answers with a bencoded dictionary that has no failure reason.
func (t *Tracker) probe(h metainfo.Hash) error {
	q := "?info_hash=" + escapeBytes(h[:]) + "&peer_id=" + escapeBytes([]byte("-PT0001-probe0000000")) +
		"&port=1&uploaded=0&downloaded=0&left=0&compact=1&event=stopped"
	body, err := fetch(t.HTTPURL + q)
	if err != nil {
		return err
	}
	return announceError(body)
}

// Scrape asks the tracker over HTTP how many seeders and leechers it
// lists for h. Any goroutine.
func (t *Tracker) Scrape(h metainfo.Hash) (seeders, leechers int, err error) {
	body, err := fetch(t.scrape + "?info_hash=" + escapeBytes(h[:]))
	if err != nil {
		return 0, 0, err
	}
	return parseScrape(body, h)
}

// WaitSwarm polls Scrape until the tracker lists at least seeders seeders
// and leechers leechers for h: a client that learns peers only from the
// tracker (aria2, or libtorrent with a 30-minute announce interval) should
// start after the peers it must find have announced. Any goroutine.
func (t *Tracker) WaitSwarm(h metainfo.Hash, seeders, leechers int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, l, err := t.Scrape(h)
		if err == nil && s >= seeders && l >= leechers {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peertest: tracker lists %d seeders, %d leechers (%v) for %s after %v; want %d, %d",
				s, l, err, h, timeout, seeders, leechers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetch GETs url and returns the body of a 200 answer, at most 1 MiB.
func fetch(url string) ([]byte, error) {
	resp, err := probeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peertest: tracker HTTP %d: %q", resp.StatusCode, body)
	}
	return body, nil
}

// escapeBytes percent-encodes every byte outside the unreserved set, the
// form trackers expect for binary info_hash and peer_id values (url's
// QueryEscape would turn a space into '+').
func escapeBytes(b []byte) string {
	const hex = "0123456789ABCDEF"
	var s strings.Builder
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			s.WriteByte(c)
		default:
			s.WriteByte('%')
			s.WriteByte(hex[c>>4])
			s.WriteByte(hex[c&15])
		}
	}
	return s.String()
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(tb testing.TB) int {
	tb.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
