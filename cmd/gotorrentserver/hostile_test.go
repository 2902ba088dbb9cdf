package main

// Daemon-level regression tests for issue 11 ("fit for the open internet"):
// each runs the real binary and checks what an operator would see: exit
// codes, log lines, bytes on disk and the API's JSON.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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
	"gotorrentserver/netio/peertest"
)

// syncBuf collects a child's output; tests read it while the child writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveProc is a `gotorrentserver serve` child whose exit is watched, so a
// test can tell "did not come up" from "exited at once" and read its exit
// status without racing the cleanup.
type serveProc struct {
	*daemonProc
	log     *syncBuf
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// launchServe starts serve without waiting for it. extra flags come after
// startServe's own, so a later -peer-addr wins.
func launchServe(t *testing.T, stateDir, downloads string, apiPort int, extra ...string) *serveProc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "-state", stateDir, "-downloads", downloads, "-peer-addr", "127.0.0.1:0",
		"-api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort)}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{
		daemonProc: &daemonProc{t: t, cmd: cmd, api: fmt.Sprintf("http://127.0.0.1:%d", apiPort), state: stateDir, out: &bytes.Buffer{}},
		log:        out,
		exited:     make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// serveUp starts serve and waits until its API answers.
func serveUp(t *testing.T, stateDir, downloads string, apiPort int, extra ...string) *serveProc {
	t.Helper()
	p := launchServe(t, stateDir, downloads, apiPort, extra...)
	if err := p.waitUp(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitUp polls until the API answers /alldata with the token; it fails at
// once if the daemon exits.
func (p *serveProc) waitUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("daemon exited (%v) instead of coming up:\n%s", p.waitErr, p.log.String())
		default:
		}
		if tok, err := os.ReadFile(filepath.Join(p.state, "api-token")); err == nil {
			p.token = strings.TrimSpace(string(tok))
			if _, code := p.get("/alldata"); code == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon did not come up within %v:\n%s", timeout, p.log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// exitWithin waits for the process to end and returns its exit status, or
// ok false if it still runs after d.
func (p *serveProc) exitWithin(d time.Duration) (code int, ok bool) {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

func (p *serveProc) signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and requires exit status 0 within 6 s.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	code, ok := p.exitWithin(6 * time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM: exited %v, status %d:\n%s", ok, code, p.log.String())
	}
}

func (p *serveProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// tdFull is /torrentdata (and one /alldata session) as the tests read it.
type tdFull struct {
	InfoHash       string  `json:"infohash"`
	State          string  `json:"state"`
	Progress       float64 `json:"progress"`
	Error          *string `json:"error"`
	Rechecks       int     `json:"rechecks"`
	UpRate         int64   `json:"uprate"`
	DownRate       int64   `json:"downrate"`
	Uploaded       int64   `json:"uploaded"`
	BitfieldBase64 string  `json:"bitfield_base64"`
	BitfieldLength int     `json:"bitfield_length"`
	Trackers       []struct {
		URL    string  `json:"url"`
		Status string  `json:"status"`
		Error  *string `json:"error"`
	} `json:"trackers"`
	Peers []struct {
		Host      string `json:"host"`
		Connected bool   `json:"connected"`
	} `json:"Peers"`
}

func (td tdFull) errText() string {
	if td.Error == nil {
		return "<null>"
	}
	return *td.Error
}

func (p *serveProc) info(ih metainfo.Hash) (tdFull, int) {
	var td tdFull
	b, code := p.get("/torrentdata?infohash=" + ih.String())
	if code == 200 {
		if err := json.Unmarshal(b, &td); err != nil {
			p.t.Fatalf("/torrentdata: %v: %s", err, b)
		}
	}
	return td, code
}

// waitFor polls /torrentdata until cond holds and returns that answer.
func (p *serveProc) waitFor(t *testing.T, ih metainfo.Hash, what string, timeout time.Duration, cond func(tdFull) bool) tdFull {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		td, code := p.info(ih)
		if code == 200 && cond(td) {
			return td
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last /torrentdata %d: state %q progress %.3f rechecks %d error %s\nlog:\n%s",
				what, timeout, code, td.State, td.Progress, td.Rechecks, td.errText(), p.log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *serveProc) waitSeeding(t *testing.T, ih metainfo.Hash) tdFull {
	t.Helper()
	return p.waitFor(t, ih, "seeding", 30*time.Second, func(td tdFull) bool { return td.State == "seeding" })
}

// addTorrent posts raw to /addtorrentfile with query and requires 200 and
// the infohash back.
func (p *serveProc) addTorrent(t *testing.T, query string, raw []byte, ih metainfo.Hash) {
	t.Helper()
	b, code := p.do("POST", "/addtorrentfile?"+query, raw)
	var ok okJSON
	json.Unmarshal(b, &ok)
	if code != 200 || ok.InfoHash != ih.String() {
		t.Fatalf("add: %d %s\n%s", code, b, p.log.String())
	}
}

type okJSON struct {
	InfoHash string `json:"infohash"`
}

// patterned is n bytes that differ from piece to piece (a fixed sequence
// per seed), so a piece read from the wrong place fails its hash.
func patterned(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

type fileSpec struct {
	name string
	size int
}

// makeFolderTorrent writes folder parent/name holding files and returns a
// torrent of it (64 KiB pieces, the given trackers).
func makeFolderTorrent(t *testing.T, parent, name string, trackers []string, files ...fileSpec) ([]byte, *metainfo.MetaInfo) {
	t.Helper()
	src := filepath.Join(parent, name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(src, f.name), patterned(f.size, uint32(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opt := metainfo.CreateOptions{PieceLength: 64 << 10}
	if len(trackers) > 0 {
		opt.Trackers = [][]string{trackers}
	}
	raw, err := metainfo.Create(src, opt)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return raw, mi
}

func writeTorrentFile(t *testing.T, raw []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.torrent")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func countBits(b []byte) int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// ---------------------------------------------------------------------------
// 1. A second daemon on the same state folder.

// TestSecondDaemonSameStateRefused: a second serve on a state folder in use
// exits non-zero within 5 s saying the folder is in use and by which pid,
// never comes up on its own API port, and the first keeps answering.
func TestSecondDaemonSameStateRefused(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	first := serveUp(t, stateDir, downloads, freePort(t))
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

// ---------------------------------------------------------------------------
// 2. Restart at once on the same ports while peers and API clients are
// connected.

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
			d := serveUp(t, stateDir, downloads, apiPort, "-peer-addr", peerAddr)
			d.addTorrent(t, "path=keep", raw, mi.InfoHash)
			d.waitSeeding(t, mi.InfoHash)

			peerConn := peerHandshake(t, peerAddr, mi.InfoHash)
			defer peerConn.Close()
			d.waitFor(t, mi.InfoHash, "our peer connection listed", 10*time.Second, func(td tdFull) bool {
				for _, p := range td.Peers {
					if p.Connected && p.Host == peerConn.LocalAddr().String() {
						return true
					}
				}
				return false
			})
			apiConn := keepAliveAPI(t, d.daemonProc, apiPort)
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
			if !strings.Contains(d2.log.String(), "peers on "+peerAddr) {
				t.Fatalf("restarted daemon is not on %s:\n%s", peerAddr, d2.log.String())
			}
			d2.waitFor(t, mi.InfoHash, "restored torrent seeding", 30*time.Second, func(td tdFull) bool { return td.State == "seeding" })
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

// ---------------------------------------------------------------------------
// 3. SIGHUP.

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
	d := serveUp(t, stateDir, downloads, port)
	d.addTorrent(t, "path=keep", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	d.waitFor(t, mi.InfoHash, "tracker working", 15*time.Second, func(td tdFull) bool {
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
	d2 := serveUp(t, stateDir, downloads, port)
	td := d2.waitSeeding(t, mi.InfoHash)
	if td.Rechecks != 0 {
		t.Fatalf("after SIGHUP and restart: %d rechecks, want 0", td.Rechecks)
	}
}

// ---------------------------------------------------------------------------
// 4. A lost resume record.

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
			d := serveUp(t, stateDir, downloads, port)
			d.addTorrent(t, "path=", raw, mi.InfoHash)
			d.waitSeeding(t, mi.InfoHash)
			d.stop(t)
			if err := tc.harm(filepath.Join(stateDir, mi.InfoHash.String()+".resume")); err != nil {
				t.Fatal(err)
			}

			d = serveUp(t, stateDir, downloads, port)
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
			d = serveUp(t, stateDir, downloads, port)
			td = d.waitSeeding(t, mi.InfoHash)
			if td.Error != nil {
				t.Fatalf("after one more restart: error %s", td.errText())
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 5. Disk full while adding.

// TestAddWithDiskFull: with the daemon's RLIMIT_FSIZE lowered to a few
// bytes, /addtorrentfile answers 500 with a JSON error and leaves nothing
// in the state folder; the torrent is unknown, also after a restart; a
// normal add of the same torrent then answers 200.
func TestAddWithDiskFull(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	raw, mi := makeFolderTorrent(t, t.TempDir(), "full", nil, fileSpec{"f.bin", 200000})
	port := freePort(t)
	d := serveUp(t, stateDir, downloads, port)
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
	d = serveUp(t, stateDir, downloads, port)
	if _, code := d.info(mi.InfoHash); code != 404 {
		t.Fatalf("/torrentdata after a restart: %d, want 404\n%s", code, d.log.String())
	}
	d.addTorrent(t, "path=dl", raw, mi.InfoHash)
	if _, err := os.Stat(filepath.Join(stateDir, mi.InfoHash.String()+".torrent")); err != nil {
		t.Fatalf("normal add stored no .torrent: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 6. A symlink out of the download root.

// TestSymlinkEscapeRefused: ROOT/payload is a symlink to a folder outside
// the download root holding a precious a.bin; a torrent named payload added
// with an empty path goes to state error naming the file, the outside
// folder is untouched, and removing the torrent with its data leaves it.
func TestSymlinkEscapeRefused(t *testing.T) {
	peertest.Require(t, "opentracker")
	_, mi, raw := swarmFixture(t, 2, 4096)
	stateDir, downloads := t.TempDir(), t.TempDir()
	outside := t.TempDir()
	precious := bytes.Repeat([]byte("precious "), 5000)
	if err := os.WriteFile(filepath.Join(outside, "a.bin"), precious, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(downloads, "payload")); err != nil {
		t.Fatal(err)
	}
	outsideBefore := dirNames(t, outside)
	checkOutside := func(when string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(outside, "a.bin"))
		if err != nil || !bytes.Equal(got, precious) {
			t.Fatalf("%s: %s/a.bin changed (%d bytes, %v)", when, outside, len(got), err)
		}
		if now := dirNames(t, outside); !slices.Equal(now, outsideBefore) {
			t.Fatalf("%s: %s holds %q, before %q", when, outside, now, outsideBefore)
		}
	}
	d := serveUp(t, stateDir, downloads, freePort(t))
	d.addTorrent(t, "path=", raw, mi.InfoHash)
	// Seeding would mean the link was followed: the outside folder says how.
	td := d.waitFor(t, mi.InfoHash, "state error", 30*time.Second, func(td tdFull) bool {
		return td.State == "error" || td.State == "seeding"
	})
	checkOutside("once the torrent ran")
	msg := td.errText()
	t.Logf("error shown: %s", msg)
	if td.State != "error" {
		t.Fatalf("state %q, error %s: want error", td.State, msg)
	}
	if !strings.Contains(msg, filepath.Join("payload", "a.bin")) && !strings.Contains(msg, filepath.Join("payload", "b.bin")) {
		t.Fatalf("error does not name the file: %s", msg)
	}
	if strings.Contains(msg, outside) {
		t.Fatalf("error names the link's target %s: %s", outside, msg)
	}
	b, code := d.get("/removetorrent?delete=true&infohash=" + mi.InfoHash.String())
	t.Logf("/removetorrent delete=true: %d %s", code, b)
	if code != 200 && code != 500 {
		t.Fatalf("/removetorrent: %d %s", code, b)
	}
	if _, code := d.info(mi.InfoHash); code != 404 {
		t.Fatalf("/torrentdata after remove: %d", code)
	}
	checkOutside("after remove with delete=true")
}

// ---------------------------------------------------------------------------
// 7. Data changing under a seeding torrent.

// TestDataChangedUnderSeed: a file of a seeding torrent is cut in half or
// deleted; when a leecher asks for it the torrent goes to state error
// naming the file, progress unchanged; /recheck answers 200 with the
// infohash and the torrent rechecks into downloading with what is left.
func TestDataChangedUnderSeed(t *testing.T) {
	const sizeA, sizeB = 3<<20 + 1111, 3<<20 + 2222
	for _, tc := range []struct {
		name string
		harm func(path string) error
		left int64 // bytes of the torrent still on disk afterwards, from its start
	}{
		{"truncated", func(path string) error { return os.Truncate(path, sizeB/2) }, sizeA + sizeB/2},
		{"deleted", os.Remove, sizeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir, downloads := t.TempDir(), t.TempDir()
			raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "chg", nil,
				fileSpec{"a.bin", sizeA}, fileSpec{"b.bin", sizeB})
			peerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			d := serveUp(t, stateDir, downloads, freePort(t), "-peer-addr", peerAddr)
			d.addTorrent(t, "path=keep", raw, mi.InfoHash)
			seeding := d.waitSeeding(t, mi.InfoHash)
			if err := tc.harm(filepath.Join(downloads, "keep", "chg", "b.bin")); err != nil {
				t.Fatal(err)
			}
			// The file has been gone a while when a leecher comes. Storage
			// checks a cached descriptor against the disk at most once a
			// second (FileCache.liveEvery): within a second of the check's
			// open, a deleted file's old bytes are still served (the whole
			// 6 MiB went out in 0.1 s that way, and the torrent stayed
			// seeding).
			time.Sleep(1500 * time.Millisecond)
			bin, _ := binary()
			leecher := peertest.Start(t, bin, "get", "-o", t.TempDir(), "-listen", "127.0.0.1:0", "-peer", peerAddr,
				writeTorrentFile(t, raw))
			defer leecher.Stop()
			start := time.Now()
			td := d.waitFor(t, mi.InfoHash, "state error", 10*time.Second, func(td tdFull) bool { return td.State == "error" })
			t.Logf("state error %v after the leecher started: %s", time.Since(start).Round(time.Millisecond), td.errText())
			if !strings.Contains(td.errText(), "b.bin") {
				t.Fatalf("error does not name b.bin: %s", td.errText())
			}
			if td.Progress != seeding.Progress {
				t.Fatalf("progress in error %v, was %v", td.Progress, seeding.Progress)
			}
			b, code := d.get("/recheck?infohash=" + mi.InfoHash.String())
			var ok okJSON
			if json.Unmarshal(b, &ok); code != 200 || ok.InfoHash != mi.InfoHash.String() {
				t.Fatalf("/recheck: %d %s", code, b)
			}
			sawChecking := false
			td = d.waitFor(t, mi.InfoHash, "downloading after the recheck", 30*time.Second, func(td tdFull) bool {
				sawChecking = sawChecking || td.State == "checking"
				return td.State != "checking" && td.State != "error" && td.Rechecks > seeding.Rechecks
			})
			t.Logf("after /recheck: state %s progress %.3f rechecks %d (checking seen: %v)", td.State, td.Progress, td.Rechecks, sawChecking)
			if td.State != "downloading" || td.Progress >= 1 || td.Progress <= 0 || td.Error != nil {
				t.Fatalf("after /recheck: state %s progress %v error %s, want downloading with what is left",
					td.State, td.Progress, td.errText())
			}
			// The recheck found exactly the pieces still whole on disk.
			bf, _ := base64.StdEncoding.DecodeString(td.BitfieldBase64)
			for i := range mi.NumPieces() {
				whole := int64(i+1)*mi.PieceLength <= tc.left
				if has := i/8 < len(bf) && bf[i/8]&(0x80>>(i%8)) != 0; has != whole {
					t.Fatalf("after /recheck: piece %d of %d in the bitfield: %v, whole on disk: %v", i, mi.NumPieces(), has, whole)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 8. /stoptorrent keeps progress.

// TestStopKeepsProgress: a seeding torrent stopped over the API shows
// state stopped, progress 1 and a full bitfield in /torrentdata and in
// /alldata; /alldata says listen_error null.
func TestStopKeepsProgress(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	// 37 pieces: the bitfield's last byte has spare bits that must stay 0.
	raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "stopme", nil,
		fileSpec{"s.bin", 36<<16 + 5000})
	d := serveUp(t, stateDir, downloads, freePort(t))
	d.addTorrent(t, "path=keep", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	if b, code := d.get("/stoptorrent?infohash=" + mi.InfoHash.String()); code != 200 {
		t.Fatalf("/stoptorrent: %d %s", code, b)
	}
	check := func(where string, td tdFull) {
		t.Helper()
		bf, err := base64.StdEncoding.DecodeString(td.BitfieldBase64)
		if td.State != "stopped" || td.Progress != 1 || err != nil || td.BitfieldLength != mi.NumPieces() ||
			len(bf) != (mi.NumPieces()+7)/8 || countBits(bf) != mi.NumPieces() {
			t.Fatalf("%s after /stoptorrent: state %q progress %v, bitfield %d bits set of %d pieces (length %d, %d bytes, %v)",
				where, td.State, td.Progress, countBits(bf), mi.NumPieces(), td.BitfieldLength, len(bf), err)
		}
	}
	td, _ := d.info(mi.InfoHash)
	check("/torrentdata", td)

	b, code := d.get("/alldata")
	if code != 200 {
		t.Fatalf("/alldata: %d", code)
	}
	var all struct {
		Sessions []tdFull `json:"sessions"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &top)
	if le, ok := top["listen_error"]; !ok || string(le) != "null" {
		t.Fatalf("/alldata listen_error: present %v, value %s; want null while the peer port is healthy", ok, le)
	}
	found := false
	for _, s := range all.Sessions {
		if s.InfoHash == mi.InfoHash.String() {
			check("/alldata", s)
			found = true
		}
	}
	if !found {
		t.Fatalf("/alldata does not list the torrent: %s", b)
	}
}

// ---------------------------------------------------------------------------
// 9. Rates drop after a transfer.

// TestUpRateDropsAfterTransfer: a seeding daemon serves a leecher (our own
// get); the upload rate shows while it transfers and is 0 within 3 s of the
// leecher's exit.
func TestUpRateDropsAfterTransfer(t *testing.T) {
	stateDir, downloads := t.TempDir(), t.TempDir()
	raw, mi := makeFolderTorrent(t, filepath.Join(downloads, "keep"), "rate", nil, fileSpec{"r.bin", 6 << 20})
	peerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := serveUp(t, stateDir, downloads, freePort(t), "-peer-addr", peerAddr)
	// 2 MiB/s: a transfer of about 3 s, long enough to see the rate.
	d.addTorrent(t, "path=keep&maxup=2048", raw, mi.InfoHash)
	d.waitSeeding(t, mi.InfoHash)
	bin, _ := binary()
	out := t.TempDir()
	leecher := peertest.Start(t, bin, "get", "-o", out, "-listen", "127.0.0.1:0", "-peer", peerAddr, writeTorrentFile(t, raw))
	exited := make(chan error, 1)
	go func() { exited <- leecher.Wait(60 * time.Second) }()
	var maxRate int64
	var exitedAt time.Time
poll:
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("leecher: %v\n%s", err, leecher.Output())
			}
			exitedAt = time.Now()
			break poll
		case <-time.After(50 * time.Millisecond):
		}
		td, _ := d.info(mi.InfoHash)
		maxRate = max(maxRate, td.UpRate)
	}
	got, err := os.ReadFile(filepath.Join(out, "rate", "r.bin"))
	want, _ := os.ReadFile(filepath.Join(downloads, "keep", "rate", "r.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("leecher's copy differs: %v", err)
	}
	if maxRate == 0 {
		t.Fatal("uprate never above 0 during the transfer")
	}
	td := d.waitFor(t, mi.InfoHash, "uprate 0 after the leecher left", 3*time.Second-time.Since(exitedAt),
		func(td tdFull) bool { return td.UpRate == 0 })
	t.Logf("uprate peaked at %d KiB/s, 0 %v after the leecher exited (uploaded %d KiB)", maxRate,
		time.Since(exitedAt).Round(time.Millisecond), td.Uploaded)
}

// ---------------------------------------------------------------------------
// 10. Clean JSON on stdout.

// decodeOneJSON requires out to be exactly one JSON document (whitespace
// around it allowed) and decodes it into v.
func decodeOneJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	r := bytes.NewReader(out)
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v:\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout has more than one JSON value:\n%s", out)
	}
	rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), r))
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stdout has %q after the JSON document", rest)
	}
}

// runBinary runs the built binary with args, returning stdout, stderr and
// the exit status; it gives up after limit.
func runBinary(t *testing.T, limit time.Duration, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), cmd.ProcessState.ExitCode()
}

// TestInfoJSONStdoutClean: `info -json FILE` run as the real binary prints
// exactly one JSON document on stdout, describing the file.
func TestInfoJSONStdoutClean(t *testing.T) {
	raw, mi := makeFolderTorrent(t, t.TempDir(), "clean", []string{"http://127.0.0.1:1/announce"},
		fileSpec{"x.bin", 100000}, fileSpec{"y.bin", 1})
	stdout, stderr, code := runBinary(t, 30*time.Second, "info", "-json", writeTorrentFile(t, raw))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got infoJSON
	decodeOneJSON(t, stdout, &got)
	if got.InfoHash != mi.InfoHash.String() || got.TotalSize != 100001 || len(got.Files) != 2 || got.Name != "clean" {
		t.Fatalf("info -json: %+v", got)
	}
}
