package deploy_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// syscallGroups expands systemd's @groups into system call names.
func syscallGroups(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "@"):
			cur = l
		case l == "" || strings.HasPrefix(l, "#") || cur == "":
		default:
			groups[cur] = append(groups[cur], l)
		}
	}
	return groups
}

func expand(groups map[string][]string, names []string, into map[string]bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "@") {
			expand(groups, groups[n], into)
		} else {
			into[n] = true
		}
	}
}

// allowedSyscalls is what the unit's SystemCallFilter= lines let through:
// the allow lists, less the ~ deny lists.
func allowedSyscalls(t *testing.T, u *unitFile) map[string]bool {
	t.Helper()
	groups := syscallGroups(t)
	allow, deny := map[string]bool{}, map[string]bool{}
	for _, v := range u.all("Service", "SystemCallFilter") {
		if strings.HasPrefix(v, "~") {
			expand(groups, strings.Fields(v[1:]), deny)
		} else {
			expand(groups, strings.Fields(v), allow)
		}
	}
	for n := range deny {
		delete(allow, n)
	}
	return allow
}

// TestUnitSandboxFitsTheDaemon runs the unit's command line under strace
// while the daemon does its work (API, a torrent checked and seeded to a
// peer, resume records written, a clean stop) and requires every system
// call and socket family it used to pass the unit's SystemCallFilter= and
// RestrictAddressFamilies=: one outside them would fail under systemd only.
func TestUnitSandboxFitsTheDaemon(t *testing.T) {
	strace := requireTool(t, "strace")
	requireTool(t, "systemd-analyze")
	u := loadUnit(t, deployFile(unitName))
	bin := mustBinary(t)
	r := prepareUnitRun(t, u, bin)
	trace := filepath.Join(t.TempDir(), "trace")
	if out, err := exec.Command(strace, "-f", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		skipLoud(t, "strace cannot trace here (%v): %s", err, bytes.TrimSpace(out))
	}
	argv := append([]string{strace, "-f", "-qq", "-o", trace, "--"}, r.argv...)
	d := startDaemon(t, argv, childEnv(r.env), r.apiAddr, r.state)
	token := d.waitUp(30 * time.Second)
	d.checkAPI(token)

	// A torrent whose data is in place: the daemon checks it and seeds it.
	data := filepath.Join(r.downloads, "data")
	os.MkdirAll(data, 0o755)
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	os.WriteFile(filepath.Join(data, "f.bin"), payload, 0o644)
	torrent := filepath.Join(t.TempDir(), "data.torrent")
	if out, err := exec.Command(bin, "create", "-o", torrent, data).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	tb, _ := os.ReadFile(torrent)
	req, _ := http.NewRequest(http.MethodPost, d.api+"/addtorrentfile?path=.&start=true", bytes.NewReader(tb))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("addtorrentfile: %d %s", resp.StatusCode, body)
	}
	peerAddr := ""
	for deadline := time.Now().Add(20 * time.Second); peerAddr == ""; time.Sleep(100 * time.Millisecond) {
		if m := regexp.MustCompile(`peers on (\S+),`).FindStringSubmatch(d.log.String()); m != nil {
			peerAddr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no peer address in the log:\n%s", d.log.String())
		}
	}
	got := t.TempDir()
	get := exec.Command(bin, "get", "-o", got, "-peer", peerAddr, torrent)
	if out, err := runWithin(get, 60*time.Second); err != nil {
		t.Fatalf("get from the daemon: %v\n%s\n%s", err, out, d.log.String())
	}
	if b, _ := os.ReadFile(filepath.Join(got, "data", "f.bin")); !bytes.Equal(b, payload) {
		t.Fatal("the peer did not get the daemon's data")
	}

	// strace is the child: signal the daemon itself (its pid is in the lock).
	pidText, err := os.ReadFile(filepath.Join(r.state, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("lock holds %q", pidText)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	d.waitClean(20*time.Second, "SIGTERM")

	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedSyscalls(t, u)
	families := map[string]bool{}
	for _, v := range u.all("Service", "RestrictAddressFamilies") {
		for _, f := range strings.Fields(v) {
			families[f] = true
		}
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\d+\s+(?:<\.\.\. )?([a-z_][a-z0-9_]*)[( ]`).FindAllStringSubmatch(string(b), -1) {
		used[m[1]] = true
	}
	if !used["openat2"] && !used["openat"] {
		t.Fatalf("the trace shows no file opens: not a trace of the daemon?\n%.2000s", b)
	}
	var bad []string
	for n := range used {
		if !allowed[n] && n != "execve" { // strace's own exec of the daemon
			bad = append(bad, n)
		}
	}
	for _, m := range regexp.MustCompile(`socket\((AF_[A-Z0-9]+)`).FindAllStringSubmatch(string(b), -1) {
		if !families[m[1]] {
			bad = append(bad, "socket "+m[1])
		}
	}
	slices.Sort(bad)
	if bad = slices.Compact(bad); len(bad) > 0 {
		t.Fatalf("the daemon used what the unit's sandbox refuses: %s", strings.Join(bad, ", "))
	}
	t.Logf("%d system calls used, all allowed by the unit", len(used))
}

// runWithin runs cmd and kills it when it outlasts limit.
func runWithin(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("still running after %v", limit)
	}
}
