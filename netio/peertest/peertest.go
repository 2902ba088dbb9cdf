// Package peertest runs real BitTorrent clients from Debian packages
// (python3-libtorrent, aria2c, transmission-cli) and opentracker on
// 127.0.0.1, for interop tests and benchmarks. Every client runs with DHT,
// local peer discovery, UPnP and NAT-PMP off, and PEX off unless asked.
// A missing tool skips the caller with a loud "SKIP (tool missing)" line.
package peertest

import (
	"bufio"
	"bytes"
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
			// go test shows Skip messages only with -v: say it on stderr too,
			// so a run without the interop peers is never mistaken for one with.
			msg := fmt.Sprintf("SKIP (tool missing): %s: %s is not installed; CI installs it (.ci/run)", tb.Name(), tool)
			fmt.Fprintln(os.Stderr, msg)
			tb.Skip(msg)
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
// Its methods may be called from any goroutine.
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

	// Set by the client constructors before the Proc is shared, read-only
	// afterwards: done recognises the line a client prints once it holds
	// the whole torrent; exitDone also counts a clean exit as done, for
	// clients (aria2) whose clean exit means "complete".
	done     func(line string) bool
	exitDone bool
}

// Start runs name with args in its own process group, collecting its
// output lines; tb's cleanup stops it. Lines end at '\n' or '\r' (progress
// readouts redraw with '\r'), lose trailing blanks, and empty ones are
// dropped. The child gets SIGKILL if the test binary dies without cleaning
// up (Pdeathsig; a client that drops privileges, like opentracker, loses
// that guard).
func Start(tb testing.TB, name string, args ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
	scanOutput(r, func(line string) {
		p.mu.Lock()
		if len(p.lines) < 100000 {
			p.lines = append(p.lines, line)
		}
		p.mu.Unlock()
		p.cond.Broadcast()
	})
	err := p.cmd.Wait()
	p.mu.Lock()
	p.ended, p.err = true, err
	p.mu.Unlock()
	p.cond.Broadcast()
}

// scanOutput calls add with each non-empty line of r, trailing blanks
// removed, until r ends. A line over 1 MiB stops the scanner; the rest is
// drained unread so the child never blocks on a full pipe.
func scanOutput(r io.Reader, add func(line string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	sc.Split(scanLinesCR)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), " \t"); line != "" {
			add(line)
		}
	}
	io.Copy(io.Discard, r)
}

// scanLinesCR is bufio.ScanLines that also ends a line at '\r'.
func scanLinesCR(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// WaitLine waits for a line starting with prefix and returns it.
func (p *Proc) WaitLine(prefix string, timeout time.Duration) (string, error) {
	return p.waitFor(func(l string) bool { return strings.HasPrefix(l, prefix) }, false, fmt.Sprintf("%q", prefix), timeout)
}

// WaitMatch waits for a line containing substr anywhere and returns it;
// for clients that start their lines with a timestamp.
func (p *Proc) WaitMatch(substr string, timeout time.Duration) (string, error) {
	return p.waitFor(func(l string) bool { return strings.Contains(l, substr) }, false, fmt.Sprintf("a line with %q", substr), timeout)
}

// WaitDone waits until the client reports that it holds the whole torrent:
// a leecher finished downloading, or a seeder finished checking its data
// and seeds. The marker is client specific (see Libtorrent, Aria2 and
// Transmission); a Proc started with Start has none and fails at once.
func (p *Proc) WaitDone(timeout time.Duration) error {
	if p.done == nil {
		return fmt.Errorf("peertest: %s has no completion marker", p.Name)
	}
	_, err := p.waitFor(p.done, p.exitDone, "completion", timeout)
	return err
}

func (p *Proc) waitFor(match func(string) bool, cleanExitMatches bool, what string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, p.cond.Broadcast)
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				return p.lines[i], nil
			}
		}
		if p.ended {
			if cleanExitMatches && p.err == nil {
				return "", nil
			}
			return "", fmt.Errorf("%s exited (%v) before %s; output:\n%s", p.Name, p.err, what, p.tail())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no %s within %v; output:\n%s", p.Name, what, timeout, p.tail())
		}
		p.cond.Wait()
	}
}

// CPU is the process's user and system CPU time so far (Linux).
func (p *Proc) CPU() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces: count from its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var utime, stime int64
	if len(f) > 12 {
		fmt.Sscan(f[11], &utime)
		fmt.Sscan(f[12], &stime)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
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

// WaitListen waits until something accepts TCP connections on
// 127.0.0.1:Port, for clients that print nothing when they start
// listening. Each probe connection is closed at once without a byte sent.
// Any goroutine.
func (p *Proc) WaitListen(timeout time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", p.Port)
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		p.mu.Lock()
		ended, perr := p.ended, p.err
		p.mu.Unlock()
		if ended {
			return fmt.Errorf("%s exited (%v) before listening on %s; output:\n%s", p.Name, perr, addr, p.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: nothing listens on %s after %v: %v", p.Name, addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopAfter stops p once d has passed, unless the test ends first.
func (p *Proc) stopAfter(tb testing.TB, d time.Duration) {
	t := time.AfterFunc(d, p.Stop)
	tb.Cleanup(func() { t.Stop() })
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
// it listens; Port is then set. WaitDone waits for its "DONE" line, which
// a seeder (--keep) prints once its check finds the data complete.
func Libtorrent(tb testing.TB, args ...string) *Proc {
	tb.Helper()
	Require(tb, "libtorrent")
	script := filepath.Join(tb.TempDir(), "lt_peer.py")
	if err := os.WriteFile(script, ltPeerScript, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := Start(tb, LibtorrentPython, append([]string{script}, args...)...)
	p.done = func(l string) bool { return strings.HasPrefix(l, "DONE ") }
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
