package main

// The process harness of the daemon tests: the real binary, built once,
// started as a child, driven over its API and watched until it exits.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// The daemon tests run the real binary, as an operator would.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gts-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gotorrentserver")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

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

// daemonProc is a `gotorrentserver serve` child whose exit is watched, so a
// test can tell "did not come up" from "exited at once" and read its exit
// status without racing the cleanup.
type daemonProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	api     string
	token   string
	state   string
	log     *syncBuf // stdout and stderr
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// launchServe starts serve without waiting for it. extra flags come after
// its own, so a later -peer-addr wins.
func launchServe(t testing.TB, stateDir, downloads string, apiPort int, extra ...string) *daemonProc {
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
	p := &daemonProc{t: t, cmd: cmd, api: fmt.Sprintf("http://127.0.0.1:%d", apiPort), state: stateDir,
		log: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// startServe starts serve and waits until its API answers.
func startServe(t testing.TB, stateDir, downloads string, apiPort int, extra ...string) *daemonProc {
	t.Helper()
	p := launchServe(t, stateDir, downloads, apiPort, extra...)
	if err := p.waitUp(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitUp polls until the API answers /alldata with the token; it fails at
// once if the daemon exits.
func (p *daemonProc) waitUp(timeout time.Duration) error {
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
func (p *daemonProc) exitWithin(d time.Duration) (code int, ok bool) {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

func (p *daemonProc) signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and requires exit status 0 within 6 s.
func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	code, ok := p.exitWithin(6 * time.Second)
	if !ok || code != 0 {
		t.Fatalf("SIGTERM: exited %v, status %d:\n%s", ok, code, p.log.String())
	}
}

func (p *daemonProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

func (d *daemonProc) do(method, path string, body []byte) ([]byte, int) {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.api+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

func (d *daemonProc) get(path string) ([]byte, int) { return d.do("GET", path, nil) }

// torrentJSON is /torrentdata (and one /alldata session) as the tests read it.
type torrentJSON struct {
	InfoHash       string  `json:"infohash"`
	State          string  `json:"state"`
	Progress       float64 `json:"progress"`
	MaxDown        int64   `json:"maxdown"`
	MaxUp          int64   `json:"maxup"`
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

func (td torrentJSON) errText() string {
	if td.Error == nil {
		return "<null>"
	}
	return *td.Error
}

func (p *daemonProc) info(ih metainfo.Hash) (torrentJSON, int) {
	var td torrentJSON
	b, code := p.get("/torrentdata?infohash=" + ih.String())
	if code == 200 {
		if err := json.Unmarshal(b, &td); err != nil {
			p.t.Fatalf("/torrentdata: %v: %s", err, b)
		}
	}
	return td, code
}

// waitFor polls /torrentdata until cond holds and returns that answer.
func (p *daemonProc) waitFor(t *testing.T, ih metainfo.Hash, what string, timeout time.Duration, cond func(torrentJSON) bool) torrentJSON {
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

func (p *daemonProc) waitSeeding(t *testing.T, ih metainfo.Hash) torrentJSON {
	t.Helper()
	return p.waitFor(t, ih, "seeding", 30*time.Second, func(td torrentJSON) bool { return td.State == "seeding" })
}

// addTorrent posts raw to /addtorrentfile with query and requires 200 and
// the infohash back.
func (p *daemonProc) addTorrent(t *testing.T, query string, raw []byte, ih metainfo.Hash) {
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

func freePort(t *testing.T) int { return peertest.FreePort(t) }
