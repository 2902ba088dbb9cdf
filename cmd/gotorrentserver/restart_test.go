package main

// Restarts and the state folder: a second daemon, rebinding at once,
// SIGHUP, lost resume records and a full disk (issue 11).

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// TestSecondDaemonSameStateRefused: a second serve on a state folder in use
// exits non-zero within 5 s saying the folder is in use and by which pid,
// never comes up on its own API port, and the first keeps answering.
func TestSecondDaemonSameStateRefused(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	first := startServe(t, stateDir, downloads, freePort(t))
	secondAPI := freePort(t)
	start := time.Now()
	second := launchServe(t, stateDir, t.TempDir(), secondAPI)
	code, ok := second.exitWithin(5 * time.Second)
	if !ok {
		t.Fatalf("second daemon on %s still runs after 5 s:\n%s", stateDir, second.log.String())
	}
	t.Logf("second daemon exited with status %d after %v", code, time.Since(start).Round(time.Millisecond))
	out := second.log.String()
	if code == 0 {
		t.Fatalf("second daemon exited 0:\n%s", out)
	}
	want := fmt.Sprintf("in use by another gotorrentserver: %s (held by pid %d)", stateDir, first.cmd.Process.Pid)
	if !strings.Contains(out, want) {
		t.Fatalf("second daemon's output lacks %q:\n%s", want, out)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", secondAPI), time.Second); err == nil {
		c.Close()
		t.Fatal("the refused daemon's API port accepts connections")
	}
	if b, code := first.get("/alldata"); code != 200 {
		t.Fatalf("first daemon after the refused start: %d %s", code, b)
	}
	select {
	case <-first.exited:
		t.Fatalf("first daemon exited:\n%s", first.log.String())
	default:
	}
}

// TestRestartSamePortsWithConnections: a daemon with fixed peer and API
// ports holds a real peer connection (handshake for its torrent answered)
// and a keep-alive API connection; killed with SIGKILL or stopped with
// SIGTERM, a new daemon started at once on the same ports comes up and
// answers a peer handshake on the peer port.
func TestRestartSamePortsWithConnections(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			stateDir, downloads := t.TempDir(), t.TempDir()
			raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "ports", nil, fileSpec{"p.bin", 300000})
			apiPort, peerPort := freePort(t), freePort(t)
			peerAddr := fmt.Sprintf("127.0.0.1:%d", peerPort)
			d := startServe(t, stateDir, downloads, apiPort, "-peer-addr", peerAddr)
			d.addTorrent(t, "path=keep", raw, mi.InfoHash)
			d.waitSeeding(t, mi.InfoHash)

			peerConn := peerHandshake(t, peerAddr, mi.InfoHash)
			defer peerConn.Close()
			d.waitFor(t, mi.InfoHash, "our peer connection listed", 10*time.Second, func(td torrentJSON) bool {
				for _, p := range td.Peers {
					if p.Connected && p.Host == peerConn.LocalAddr().String() {
						return true
					}
				}
				return false
			})
			apiConn := keepAliveAPI(t, d, apiPort)
			defer apiConn.Close()

			killed := time.Now()
			d.signal(sig)
			if _, ok := d.exitWithin(10 * time.Second); !ok {
				t.Fatalf("daemon still runs 10 s after %v", sig)
			}
			// Both clients see the daemon's side close, as real ones would.
			for _, c := range []net.Conn{peerConn, apiConn} {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("%v: connection to %s not closed by the daemon's end: %v", sig, c.RemoteAddr(), err)
				}
				c.Close()
			}
			restarted := time.Now()
			d2 := launchServe(t, stateDir, downloads, apiPort, "-peer-addr", peerAddr)
			if err := d2.waitUp(15 * time.Second); err != nil {
				t.Fatalf("restart on the same ports after %v: %v", sig, err)
			}
			t.Logf("%v: API answers %v after the restart (%v after the signal)", sig,
				time.Since(restarted).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
			// The API answers before serve logs its ports: wait for the
			// line rather than read the log at once.
			logged := time.Now().Add(5 * time.Second)
			for !strings.Contains(d2.log.String(), "peers on "+peerAddr) && time.Now().Before(logged) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(d2.log.String(), "peers on "+peerAddr) {
				t.Fatalf("restarted daemon is not on %s:\n%s", peerAddr, d2.log.String())
			}
			d2.waitFor(t, mi.InfoHash, "restored torrent seeding", 30*time.Second, func(td torrentJSON) bool { return td.State == "seeding" })
			c := peerHandshake(t, peerAddr, mi.InfoHash)
			c.Close()
		})
	}
}

// peerHandshake connects to addr as a BitTorrent peer for ih and returns
// the connection once the daemon's own handshake for ih has come back.
func peerHandshake(t *testing.T, addr string, ih metainfo.Hash) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var id [20]byte
	copy(id[:], "-TT0001-hostiletest0")
	if _, err := c.Write(wire.AppendHandshake(nil, wire.Handshake{InfoHash: ih, PeerID: id})); err != nil {
		c.Close()
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, wire.HandshakeLen)
	if _, err := io.ReadFull(c, buf); err != nil {
		c.Close()
		t.Fatalf("no handshake back from %s: %v", addr, err)
	}
	h, err := wire.ParseHandshake(buf)
	if err != nil || h.InfoHash != ih {
		c.Close()
		t.Fatalf("handshake back from %s: %+v %v", addr, h, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// keepAliveAPI makes one authorized HTTP/1.1 request on a raw connection,
// reads the whole answer and returns the connection, still open.
func keepAliveAPI(t *testing.T, d *daemonProc, apiPort int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", apiPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /alldata HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: keep-alive\r\n\r\n", d.token)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		c.Close()
		t.Fatalf("keep-alive /alldata: %d, close %v", resp.StatusCode, resp.Close)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// announceRecorder is an HTTP tracker on 127.0.0.1 that records the event
// parameter of every announce and answers with no peers.
type announceRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []string
}

func newAnnounceRecorder(t *testing.T) *announceRecorder {
	r := &announceRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.events = append(r.events, req.URL.Query().Get("event"))
		r.mu.Unlock()
		w.Write([]byte("d8:intervali1800e5:peers0:e"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *announceRecorder) url() string { return r.srv.URL + "/announce" }

func (r *announceRecorder) heard() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// resumeJSON is the part of a resume record the tests read.
type resumeJSON struct {
	Stopped bool      `json:"stopped"`
	Have    string    `json:"have"`
	Pieces  int       `json:"pieces"`
	Saved   time.Time `json:"saved"`
}

func readResume(t *testing.T, stateDir string, ih metainfo.Hash) resumeJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, ih.String()+".resume"))
	if err != nil {
		t.Fatal(err)
	}
	var r resumeJSON
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("resume record: %v: %s", err, b)
	}
	return r
}

// TestSighupStopsCleanly: SIGHUP stops the daemon with status 0 within
// 5 s, the tracker hears event=stopped, and the resume record is written
// again at the stop (saved after the signal, every piece in it), so the
// torrent comes back seeding without a recheck.
func TestSighupStopsCleanly(t *testing.T) {
	trk := newAnnounceRecorder(t)
	stateDir, downloads := t.TempDir(), t.TempDir()
	raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "hup", []string{trk.url()},
		fileSpec{"h.bin", 700000}, fileSpec{"i.bin", 123457})
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	d.addTorrent(t, "path=keep", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	d.waitFor(t, mi.InfoHash, "tracker working", 15*time.Second, func(td torrentJSON) bool {
		return len(td.Trackers) == 1 && td.Trackers[0].Status == "working"
	})
	if ev := trk.heard(); !slices.Contains(ev, "started") {
		t.Fatalf("tracker heard %q, no started", ev)
	}
	sent := time.Now()
	d.signal(syscall.SIGHUP)
	code, ok := d.exitWithin(6 * time.Second)
	took := time.Since(sent)
	if !ok {
		t.Fatalf("still running %v after SIGHUP:\n%s", took, d.log.String())
	}
	t.Logf("SIGHUP: exit status %d after %v", code, took.Round(time.Millisecond))
	if code != 0 || took > 5*time.Second {
		t.Fatalf("SIGHUP: exit status %d (%v) after %v, want 0 within 5 s:\n%s", code, d.waitErr, took, d.log.String())
	}
	if !strings.Contains(d.log.String(), "stopping") {
		t.Fatalf("no stopping line:\n%s", d.log.String())
	}
	if ev := trk.heard(); !slices.Contains(ev, "stopped") {
		t.Fatalf("tracker heard %q, no stopped", ev)
	}
	r := readResume(t, stateDir, mi.InfoHash)
	have, _ := hex.DecodeString(r.Have)
	if r.Saved.Before(sent) || r.Stopped || r.Pieces != mi.NumPieces() || countBits(have) != mi.NumPieces() {
		t.Fatalf("resume record after SIGHUP: saved %v (signal at %v), stopped %v, %d of %d pieces",
			r.Saved, sent, r.Stopped, countBits(have), mi.NumPieces())
	}
	d2 := startServe(t, stateDir, downloads, port)
	td := d2.waitSeeding(t, mi.InfoHash)
	if td.Rechecks != 0 {
		t.Fatalf("after SIGHUP and restart: %d rechecks, want 0", td.Rechecks)
	}
}

// TestLostResumeRecord: a seeding torrent whose resume record is cut in
// half or deleted while the daemon is down comes back listed, in state
// error, with a message about the resume record that says what to do;
// /starttorrent rechecks its data in the download root and seeds, and it
// seeds again after one more restart.
func TestLostResumeRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(path string) error
	}{
		{"truncated", func(path string) error {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			return os.Truncate(path, fi.Size()/2)
		}},
		{"deleted", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir, downloads := t.TempDir(), t.TempDir()
			raw, mi := makeFolderTorrent(t, downloads, "lost", nil, fileSpec{"l.bin", 400000}, fileSpec{"m.bin", 65536})
			port := freePort(t)
			d := startServe(t, stateDir, downloads, port)
			d.addTorrent(t, "path=", raw, mi.InfoHash)
			d.waitSeeding(t, mi.InfoHash)
			d.stop(t)
			if err := tc.harm(filepath.Join(stateDir, mi.InfoHash.String()+".resume")); err != nil {
				t.Fatal(err)
			}

			d = startServe(t, stateDir, downloads, port)
			td, code := d.info(mi.InfoHash)
			if code != 200 {
				t.Fatalf("torrent not listed after its resume record was %s: %d\n%s", tc.name, code, d.log.String())
			}
			msg := td.errText()
			t.Logf("error shown: %s", msg)
			if td.State != "error" || !strings.Contains(msg, "resume record") || !strings.Contains(msg, "start") {
				t.Fatalf("state %q, error %s: want state error naming the resume record and the way out", td.State, msg)
			}
			if _, code := d.get("/starttorrent?infohash=" + mi.InfoHash.String()); code != 200 {
				t.Fatalf("/starttorrent: %d", code)
			}
			td = d.waitSeeding(t, mi.InfoHash)
			if td.Rechecks < 1 || td.Progress != 1 || td.Error != nil {
				t.Fatalf("after start: rechecks %d progress %v error %s", td.Rechecks, td.Progress, td.errText())
			}
			d.stop(t)
			d = startServe(t, stateDir, downloads, port)
			td = d.waitSeeding(t, mi.InfoHash)
			if td.Error != nil {
				t.Fatalf("after one more restart: error %s", td.errText())
			}
		})
	}
}

// TestAddWithDiskFull: with the daemon's RLIMIT_FSIZE lowered to a few
// bytes, /addtorrentfile answers 500 with a JSON error and leaves nothing
// in the state folder; the torrent is unknown, also after a restart; a
// normal add of the same torrent then answers 200.
func TestAddWithDiskFull(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	raw, mi := makeFolderTorrent(t, t.TempDir(), "full", nil, fileSpec{"f.bin", 200000})
	port := freePort(t)
	d := startServe(t, stateDir, downloads, port)
	before := dirNames(t, stateDir)

	pid := d.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	low := unix.Rlimit{Cur: 8, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &low, nil); err != nil {
		t.Fatal(err)
	}
	b, code := d.do("POST", "/addtorrentfile?path=dl", raw)
	var e struct {
		Error *string `json:"error"`
	}
	jerr := json.Unmarshal(b, &e)
	t.Logf("add with RLIMIT_FSIZE 8: %d %s", code, b)
	if code != 500 || jerr != nil || e.Error == nil || !strings.Contains(*e.Error, syscall.EFBIG.Error()) {
		t.Fatalf("add on a full disk: %d %s, want 500 with a JSON error saying %q", code, b, syscall.EFBIG.Error())
	}
	if after := dirNames(t, stateDir); !slices.Equal(before, after) {
		t.Fatalf("state folder after the failed add: %q, before %q", after, before)
	}
	if _, code := d.info(mi.InfoHash); code != 404 {
		t.Fatalf("/torrentdata after the failed add: %d, want 404", code)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatal(err)
	}
	d.stop(t)
	d = startServe(t, stateDir, downloads, port)
	if _, code := d.info(mi.InfoHash); code != 404 {
		t.Fatalf("/torrentdata after a restart: %d, want 404\n%s", code, d.log.String())
	}
	d.addTorrent(t, "path=dl", raw, mi.InfoHash)
	if _, err := os.Stat(filepath.Join(stateDir, mi.InfoHash.String()+".torrent")); err != nil {
		t.Fatalf("normal add stored no .torrent: %v", err)
	}
}
