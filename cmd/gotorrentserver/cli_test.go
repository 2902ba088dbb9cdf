package main

// The command line itself: help, version, exit statuses, flags anywhere.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func runCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// TestHelpForms: -h, --help and help print the same usage, listing every
// command, on stdout with exit 0; so do help COMMAND and COMMAND -h for
// each command (its own flags). An unknown command or flag prints usage on
// stderr and exits 2.
func TestHelpForms(t *testing.T) {
	var first string
	for _, form := range [][]string{{"-h"}, {"--help"}, {"help"}, {"-help"}, {"help", "help"}} {
		out, errOut, code := runCLI(form...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", form, code, errOut)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Fatalf("%v prints other help:\n%s\nthan -h:\n%s", form, out, first)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(first, "  "+c.name+" ") {
			t.Errorf("usage does not list %s:\n%s", c.name, first)
		}
	}
	for _, name := range []string{"serve", "get", "info", "create", "version"} {
		help, errOut, code := runCLI("help", name)
		if code != 0 || errOut != "" || !strings.HasPrefix(help, "usage: gotorrentserver "+name) {
			t.Fatalf("help %s: exit %d, stdout %q, stderr %q", name, code, help, errOut)
		}
		for _, form := range [][]string{{name, "-h"}, {name, "--help"}} {
			out, errOut, code := runCLI(form...)
			if code != 0 || errOut != "" || out != help {
				t.Fatalf("%v: exit %d, stderr %q, stdout differs from help %s:\n%s", form, code, errOut, name, out)
			}
		}
	}
	if help, _, _ := runCLI("help", "get"); !strings.Contains(help, "-seed") {
		t.Fatalf("help get lacks get's flags:\n%s", help)
	}
	for _, bad := range [][]string{{"bogus"}, {"help", "bogus"}, {"info", "-bogus", "x.torrent"}, {"-bogus"}, {"get"}} {
		out, errOut, code := runCLI(bad...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: gotorrentserver") {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want 2 and usage on stderr", bad, code, out, errOut)
		}
	}
}

// TestVersion: version, -version and --version print one line naming the
// version, the Go release and the commit; a binary linked with -X
// main.version and main.commit reports those.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^gotorrentserver \S+ \(go[0-9.]+\S*, commit \S+.*\)\n$`)
	var first string
	for _, form := range []string{"version", "-version", "--version"} {
		out, errOut, code := runCLI(form)
		if code != 0 || errOut != "" || !re.MatchString(out) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", form, code, out, errOut)
		}
		if !strings.Contains(out, runtime.Version()) {
			t.Fatalf("%s: %q lacks %s", form, out, runtime.Version())
		}
		if first != "" && out != first {
			t.Fatalf("%s: %q, version said %q", form, out, first)
		}
		first = out
	}
	if Version() == "" {
		t.Fatal("Version() is empty")
	}

	bin := filepath.Join(t.TempDir(), "gts")
	if out, err := goBuild(bin, "-X main.version=v9.8.7-test -X main.commit=0123456789abcdef"); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, errOut, code := runBinaryAt(t, bin, 30*time.Second, "--version")
	if want := "gotorrentserver v9.8.7-test (" + runtime.Version() + ", commit 0123456789abcdef)\n"; code != 0 || string(out) != want {
		t.Fatalf("linked version: exit %d, %q (stderr %q), want %q", code, out, errOut, want)
	}
}

// TestFlagsAfterArguments: flags after the positional argument are parsed
// as flags (info FILE -json; get FILE -o DIR), a flag's value is never
// taken for the argument, and after -- everything is an argument.
func TestFlagsAfterArguments(t *testing.T) {
	parent := t.TempDir()
	raw, mi := makeFolderTorrent(t, parent, "late", nil, fileSpec{"a.bin", 70000})
	file := writeTorrentFile(t, raw)
	for _, args := range [][]string{
		{"info", file, "-json"},
		{"info", "-json", file},
		{"info", file, "--json"},
		{"info", "-timeout", "5s", file, "-json=true"},
		{"info", file, "-timeout", "5s", "-json"},
		{"info", "-json", "--", file},
	} {
		out, errOut, code := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var got infoJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.InfoHash != mi.InfoHash.String() {
			t.Fatalf("%v: not the torrent's JSON (%v):\n%s", args, err, out)
		}
	}
	// After --, a dash-led word is the file name, not a flag.
	if _, errOut, code := runCLI("info", "--", "-json"); code != 1 || !strings.Contains(errOut, "-json") {
		t.Fatalf("info -- -json: exit %d, %q; want the file -json not found", code, errOut)
	}
	if _, errOut, code := runCLI("info", file, "-json", "extra"); code != 2 {
		t.Fatalf("two arguments: exit %d, %q", code, errOut)
	}
	got := permuteArgs(getLikeFlags(), []string{"x.torrent", "-o", "/tmp/d", "-seed", "-peer", "1.2.3.4:5", "--", "-y"})
	want := []string{"-o", "/tmp/d", "-seed", "-peer", "1.2.3.4:5", "--", "x.torrent", "-y"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("permuteArgs: %q, want %q", got, want)
	}

	// get with -o after the file: a seeder (this test's own get -seed) and a
	// leecher told where it is, both taking their flags after the file.
	if testing.Short() {
		return
	}
	seedPort := freePort(t)
	seeder := startGet(t, file, "-o", parent, "-seed", "-listen", "127.0.0.1:"+itoa(seedPort))
	waitOutput(t, seeder, "complete", 30*time.Second)
	out := t.TempDir()
	stdout, stderr, code := runBinary(t, 60*time.Second, "get", file, "-o", out, "-listen", "127.0.0.1:0",
		"-peer", "127.0.0.1:"+itoa(seedPort))
	if code != 0 {
		t.Fatalf("get FILE -o DIR: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "late", "a.bin"))
	if err != nil || !bytes.Equal(b, patterned(70000, 1)) {
		t.Fatalf("get FILE -o DIR: %s/late/a.bin not the torrent's data: %v", out, err)
	}
}

// getLikeFlags has a flag of each kind get has: a string, a bool, a Var.
func getLikeFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.String("o", ".", "")
	fs.Bool("seed", false, "")
	var peers repeated
	fs.Var(&peers, "peer", "")
	return fs
}

// goBuild builds the command into bin with these -ldflags.
func goBuild(bin, ldflags string) ([]byte, error) {
	return exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput()
}

// runBinaryAt is runBinary for another build of the command.
func runBinaryAt(t *testing.T, bin string, limit time.Duration, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var ee *exec.ExitError
	if err := cmd.Wait(); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), cmd.ProcessState.ExitCode()
}

// child is a running command of the binary (a get) whose stdout and
// stderr are kept apart.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuf
	exited         chan struct{}
}

// startGet starts `get args...`; the test's cleanup kills it.
func startGet(t *testing.T, args ...string) *child {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(bin, append([]string{"get"}, args...)...), stdout: &syncBuf{}, stderr: &syncBuf{},
		exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// waitOutput polls until the child's stdout or stderr holds want.
func waitOutput(t *testing.T, c *child, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.stdout.String()+c.stderr.String(), want) {
		select {
		case <-c.exited:
			t.Fatalf("%v exited (%v) before printing %q:\nstdout %s\nstderr %s", c.cmd.Args, c.cmd.ProcessState, want, c.stdout, c.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: no %q within %v:\nstdout %s\nstderr %s", c.cmd.Args, want, timeout, c.stdout, c.stderr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
