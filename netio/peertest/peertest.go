// Package peertest runs real BitTorrent clients from Debian packages
// (python3-libtorrent, aria2c, transmission-cli) and opentracker on
// 127.0.0.1, for interop tests and benchmarks. Every client runs with DHT,
// local peer discovery, UPnP and NAT-PMP off, and PEX off unless asked.
// A missing tool skips the caller with a loud "SKIP (tool missing)" line.
package peertest

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LibtorrentPython is the interpreter that has the libtorrent module; the
// python3 first on PATH may be another one.
const LibtorrentPython = "/usr/bin/python3"

//go:embed lt_peer.py
var ltPeerScript []byte

// Require skips tb unless every named tool is available ("libtorrent" means
// the Python module).
func Require(tb testing.TB, tools ...string) {
	tb.Helper()
	for _, tool := range tools {
		if !Have(tool) {
			tb.Skipf("SKIP (tool missing): %s is not installed; CI installs it (.ci/run)", tool)
		}
	}
}

var haveLT = sync.OnceValue(func() bool {
	return exec.Command(LibtorrentPython, "-c", "import libtorrent").Run() == nil
})

// Have reports whether a tool is installed.
func Have(tool string) bool {
	if tool == "libtorrent" {
		return haveLT()
	}
	_, err := exec.LookPath(tool)
	return err == nil
}

// Proc is a running client. Lines it prints are kept for Wait* helpers.
type Proc struct {
	Name  string
	Port  int
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
	ended bool
	err   error
	log   io.Writer
}

// Start runs name with args, collecting its output lines.
func Start(tb testing.TB, name string, args ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &Proc{Name: filepath.Base(name), cmd: cmd}
	p.cond = sync.NewCond(&p.mu)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go p.read(out)
	tb.Cleanup(p.Stop)
	return p
}

func (p *Proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		if len(p.lines) < 100000 {
			p.lines = append(p.lines, sc.Text())
		}
		p.mu.Unlock()
		p.cond.Broadcast()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.ended, p.err = true, err
	p.mu.Unlock()
	p.cond.Broadcast()
}

// WaitLine waits for a line starting with prefix and returns it.
func (p *Proc) WaitLine(prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, p.cond.Broadcast)
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			if strings.HasPrefix(p.lines[i], prefix) {
				return p.lines[i], nil
			}
		}
		if p.ended {
			return "", fmt.Errorf("%s exited (%v) before %q; output:\n%s", p.Name, p.err, prefix, p.tail())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no %q within %v; output:\n%s", p.Name, prefix, timeout, p.tail())
		}
		p.cond.Wait()
	}
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *Proc) tail() string {
	n := len(p.lines)
	return strings.Join(p.lines[max(0, n-30):], "\n")
}

// Wait waits for the process to exit on its own.
func (p *Proc) Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, p.cond.Broadcast)
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.ended {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still running after %v", p.Name, timeout)
		}
		p.cond.Wait()
	}
	return p.err
}

// Stop ends the process group we started, by PID, and waits for it.
func (p *Proc) Stop() {
	p.mu.Lock()
	ended := p.ended
	p.mu.Unlock()
	if ended || p.cmd.Process == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	if p.Wait(5*time.Second) != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.Wait(5 * time.Second)
	}
}

// Libtorrent starts lt_peer.py with args (see the script) and waits until
// it listens; Port is then set.
func Libtorrent(tb testing.TB, args ...string) *Proc {
	tb.Helper()
	Require(tb, "libtorrent")
	script := filepath.Join(tb.TempDir(), "lt_peer.py")
	if err := os.WriteFile(script, ltPeerScript, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := Start(tb, LibtorrentPython, append([]string{script}, args...)...)
	line, err := p.WaitLine("PORT ", 20*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Sscanf(line, "PORT %d", &p.Port)
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ErrNoTool is returned by helpers that cannot skip (benchmarks use Have).
var ErrNoTool = errors.New("peertest: tool missing")
