package deploy_test

// What every deployment test shares: the repository, the daemon binary
// built once, a daemon child process watched until it exits, and loud skips.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root: the deploy files name paths relative to it.
var repoRoot = sync.OnceValue(func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
})

func deployFile(name string) string { return filepath.Join(repoRoot(), "deploy", name) }

// goTool is the go command running these tests, so make and the
// Dockerfile's build line use the same toolchain.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var binDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "gts-deploy-bin") })

// daemonBinary is `go build ./cmd/gotorrentserver` as the Makefile's build
// target does it, so it shares the build cache with the other daemon tests.
var daemonBinary = sync.OnceValues(func() (string, error) {
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gotorrentserver")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./cmd/gotorrentserver")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := binDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func mustBinary(t *testing.T) string {
	t.Helper()
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// skipLoud skips with a line on stderr too: go test shows skips only with
// -v, and a check that did not run must never pass for one that did.
func skipLoud(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("SKIP: %s: %s", t.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// requireTool skips loudly when tool is not on PATH.
func requireTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		skipLoud(t, "%s is not installed", tool)
	}
	return p
}

// syncBuf collects a child's output while the test reads it.
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

// daemon is a child process running serve, watched until it exits.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	api     string // http://127.0.0.1:PORT
	state   string // the state folder, where the token is generated
	log     *syncBuf
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startDaemon runs argv with env (the whole environment of the child) and
// does not wait for it to come up.
func startDaemon(t *testing.T, argv, env []string, apiAddr, stateDir string) *daemon {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, api: "http://" + apiAddr, state: stateDir, log: out, exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

// waitUp polls until /alldata answers 200 with the token the daemon wrote
// into its state folder, and returns the token.
func (d *daemon) waitUp(timeout time.Duration) string {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited (%v) instead of coming up:\n%s", d.waitErr, d.log.String())
		default:
		}
		if b, err := os.ReadFile(filepath.Join(d.state, "api-token")); err == nil {
			tok := strings.TrimSpace(string(b))
			if code, _ := d.get("/alldata", tok); code == 200 {
				return tok
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not answer /alldata within %v:\n%s", timeout, d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) get(path, token string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, d.api+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// checkAPI asserts what an operator checks first: /alldata answers with the
// token as JSON with sessions, and refuses a request without it.
func (d *daemon) checkAPI(token string) {
	d.t.Helper()
	code, body := d.get("/alldata", token)
	var all struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if code != 200 || json.Unmarshal(body, &all) != nil || all.Sessions == nil {
		d.t.Fatalf("/alldata with the token: %d %s", code, body)
	}
	if code, body := d.get("/alldata", ""); code != 401 {
		d.t.Fatalf("/alldata without a token: %d %s, want 401", code, body)
	}
	fi, err := os.Stat(filepath.Join(d.state, "api-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		d.t.Fatalf("api-token: %v, mode %v; want 0600", err, fi.Mode())
	}
}

// stopWithin sends sig and requires a clean exit (status 0, which
// Restart=on-failure leaves alone) within limit.
func (d *daemon) stopWithin(sig syscall.Signal, limit time.Duration) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	d.waitClean(limit, sig.String())
}

// waitClean requires the process to exit with status 0 within limit of
// being told to stop by cause.
func (d *daemon) waitClean(limit time.Duration, cause string) {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(limit):
		d.t.Fatalf("daemon still running %v after %s:\n%s", limit, cause, d.log.String())
	}
	if d.waitErr != nil {
		d.t.Fatalf("daemon exited with %v after %s, want status 0:\n%s", d.waitErr, cause, d.log.String())
	}
}

// childEnv is this process's environment without the daemon's own
// variables, plus extra: only what the deploy file sets reaches the daemon.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GTS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// freePort is a TCP port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
