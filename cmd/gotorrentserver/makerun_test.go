package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, s
}

// TestMakeRunCtrlC: `make run` on a terminal, interrupted with Ctrl-C
// once the daemon is up, exits 0 (not make's "*** Interrupt", status 2)
// and the daemon says it is stopping. The Makefile's run target is the real
// one's shape with the built binary in place of `go run`.
func TestMakeRunCtrlC(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		msg := fmt.Sprintf("SKIP (tool missing): %s: make is not installed", t.Name())
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stateDir, downloads := filepath.Join(dir, "state"), filepath.Join(dir, "downloads")
	makefile := filepath.Join(dir, "Makefile")
	rule := fmt.Sprintf(".PHONY: run\n\nrun:\n\t%s serve -state %s -downloads %s -peer-addr 127.0.0.1:0 -api-addr 127.0.0.1:0\n",
		bin, stateDir, downloads)
	if err := os.WriteFile(makefile, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}

	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(mk, "-f", makefile, "run")
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	// A make above us (make test) must not hand its jobserver down.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatal(err)
	}
	slave.Close() // the master reads EOF (EIO) once make and the daemon are gone
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // make's session and group
			<-exited
		}
		killDaemonOf(stateDir)
	})

	out := &syncBuf{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "peers on") {
		select {
		case <-exited:
			t.Fatalf("make exited (%v) before the daemon came up:\n%s", cmd.ProcessState, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"peers on\" line within 30 s:\n%s", out.String())
		}
	}
	start := time.Now()
	if _, err := master.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("make still runs 10 s after Ctrl-C:\n%s", out.String())
	}
	t.Logf("make exited with status %d %v after Ctrl-C", cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond))
	// The reader may still be draining the last lines.
	for end := time.Now().Add(2 * time.Second); !strings.Contains(out.String(), "stopping") && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(out.String(), "stopping") {
		t.Fatalf("make run after Ctrl-C: status %d (%v), want 0 and a stopping line:\n%s", code, cmd.ProcessState, out.String())
	}
}

// killDaemonOf ends the daemon holding stateDir's lock, if one still runs
// (a failed test): its pid is in the lock file, and it is ours only if it
// runs our binary on that state folder.
func killDaemonOf(stateDir string) {
	b, err := os.ReadFile(filepath.Join(stateDir, "lock"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	bin, _ := binary()
	if err != nil || !strings.Contains(string(cmdline), bin) || !strings.Contains(string(cmdline), stateDir) {
		return
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
