package deploy_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	unitName      = "gotorrentserver.service"
	installedPath = "/usr/local/bin/gotorrentserver" // the Makefile's default BINDIR
)

func loadUnit(t *testing.T, path string) *unitFile {
	t.Helper()
	u, err := readUnit(path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// stageRoot makes a root folder holding the unit file byte for byte and
// the daemon binary where ExecStart names it, so systemd-analyze --root
// checks the real file, executable path included.
func stageRoot(t *testing.T, unitText []byte) (root, unitPath string) {
	t.Helper()
	root = t.TempDir()
	unitPath = filepath.Join(root, "etc/systemd/system", unitName)
	copyFile(t, mustBinary(t), filepath.Join(root, installedPath), 0o755)
	if err := os.MkdirAll(filepath.Dir(unitPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unitPath, unitText, 0o644); err != nil {
		t.Fatal(err)
	}
	return root, unitPath
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// verifyUnit runs systemd-analyze verify on a staged unit. It exits 0 on
// some warnings (an unknown key is "ignoring"), so any output fails too.
func verifyUnit(t *testing.T, root, unitPath string) (string, error) {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "--recursive-errors=no", unitPath).CombinedOutput()
	if err == nil && len(strings.TrimSpace(string(out))) > 0 {
		err = fmt.Errorf("warnings")
	}
	return string(out), err
}

func TestUnitVerifies(t *testing.T) {
	requireTool(t, "systemd-analyze")
	text, err := os.ReadFile(deployFile(unitName))
	if err != nil {
		t.Fatal(err)
	}
	root, unitPath := stageRoot(t, text)
	if out, err := verifyUnit(t, root, unitPath); err != nil {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitName, err, out)
	}

	// The check has teeth: a misspelt directive and a missing binary fail it.
	bad := strings.Replace(string(text), "NoNewPrivileges=", "NoNewPrivilege=", 1)
	root2, unitPath2 := stageRoot(t, []byte(bad))
	if out, err := verifyUnit(t, root2, unitPath2); err == nil || !strings.Contains(out, "NoNewPrivilege") {
		t.Fatalf("verify passed a misspelt directive: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(root, installedPath))
	if out, err := verifyUnit(t, root, unitPath); err == nil {
		t.Fatalf("verify passed without the binary at %s:\n%s", installedPath, out)
	}

	// The sandbox keeps its score: systemd rates it OK (below 2.0 of 10).
	copyFile(t, mustBinary(t), filepath.Join(root, installedPath), 0o755)
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--root="+root, unitPath).CombinedOutput()
	if err != nil && strings.Contains(string(out), "offline") {
		t.Logf("systemd-analyze security --offline unsupported here, exposure not checked:\n%s", out)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(m[1], 64); score > 2.0 {
		t.Fatalf("exposure %s, want at most 2.0:\n%s", m[1], out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}

// TestUnitUserFromSysusers creates the unit's user the way the install
// steps do (systemd-sysusers), in a scratch root.
func TestUnitUserFromSysusers(t *testing.T) {
	requireTool(t, "systemd-sysusers")
	u := loadUnit(t, deployFile(unitName))
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	out, err := exec.Command("systemd-sysusers", "--root="+root, deployFile("gotorrentserver.sysusers")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	user, grp := u.one("Service", "User"), u.one("Service", "Group")
	home := "/var/lib/" + u.one("Service", "StateDirectory")
	if !regexp.MustCompile(`(?m)^` + user + `:x:\d+:\d+:[^:]*:` + home + `:`).Match(passwd) {
		t.Fatalf("User=%s with home %s not in passwd:\n%s", user, home, passwd)
	}
	if !regexp.MustCompile(`(?m)^` + grp + `:x:\d+:`).Match(group) {
		t.Fatalf("Group=%s not in group:\n%s", grp, group)
	}
}

// unitRun is the unit's ExecStart and Environment rewritten for a test:
// paths into a scratch root, the peer port to any free one and the API to
// a free port on 127.0.0.1.
type unitRun struct {
	argv, env []string
	apiAddr   string
	state     string
	downloads string
}

func prepareUnitRun(t *testing.T, u *unitFile, bin string) unitRun {
	t.Helper()
	env, err := u.environment()
	if err != nil {
		t.Fatal(err)
	}
	argv, err := u.execStart(env)
	if err != nil {
		t.Fatal(err)
	}
	if argv[0] != installedPath || len(argv) < 2 || argv[1] != "serve" {
		t.Fatalf("ExecStart runs %q, want %s serve ...", argv, installedPath)
	}
	for _, f := range u.all("Service", "EnvironmentFile") {
		if !strings.HasPrefix(f, "-") {
			t.Fatalf("EnvironmentFile=%s must be optional (\"-\"): a fresh install has none", f)
		}
	}
	// Under ProtectSystem=strict only these are writable.
	writable := []string{"/var/lib/" + u.one("Service", "StateDirectory")}
	for _, p := range u.all("Service", "ReadWritePaths") {
		writable = append(writable, strings.Fields(strings.TrimLeft(p, "-"))...)
	}
	root := t.TempDir()
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := unitRun{apiAddr: apiAddr}
	setting := func(flag, envName string) (string, bool) {
		v := ""
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == envName {
				v = val
			}
		}
		for i := 2; i+1 < len(argv); i++ {
			if argv[i] == flag || argv[i] == "-"+flag {
				v = argv[i+1]
			}
		}
		return v, v != ""
	}
	for _, s := range []struct{ flag, env string }{{"-state", "GTS_STATE"}, {"-downloads", "GTS_DOWNLOADS"},
		{"-peer-addr", "GTS_PEER_ADDR"}, {"-api-addr", "GTS_API_ADDR"}} {
		if _, ok := setting(s.flag, s.env); !ok {
			t.Fatalf("the unit sets neither %s nor %s: the daemon's default would be relative to its working folder", s.flag, s.env)
		}
	}
	for _, s := range []string{"-state", "-downloads"} {
		p, _ := setting(s, map[string]string{"-state": "GTS_STATE", "-downloads": "GTS_DOWNLOADS"}[s])
		ok := false
		for _, w := range writable {
			ok = ok || p == w || strings.HasPrefix(p, strings.TrimSuffix(w, "/")+"/")
		}
		if !filepath.IsAbs(p) || !ok {
			t.Fatalf("%s %s is not beneath the unit's writable paths %q", s, p, writable)
		}
	}
	rewrite := func(key, v string) string {
		switch key {
		case "-peer-addr", "GTS_PEER_ADDR":
			return "127.0.0.1:0"
		case "-api-addr", "GTS_API_ADDR":
			return apiAddr
		}
		if filepath.IsAbs(v) && v != installedPath {
			return filepath.Join(root, v)
		}
		return v
	}
	r.argv = append([]string{bin}, argv[1:]...)
	for i := 2; i < len(r.argv); i++ {
		r.argv[i] = rewrite(r.argv[i-1], r.argv[i])
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		r.env = append(r.env, k+"="+rewrite(k, v))
	}
	state, _ := setting("-state", "GTS_STATE")
	downloads, _ := setting("-downloads", "GTS_DOWNLOADS")
	r.state, r.downloads = filepath.Join(root, state), filepath.Join(root, downloads)
	return r
}

// TestUnitRunsTheDaemon runs the unit's command line as systemd would
// (its environment, its descriptor limit when this user may set it), checks
// the API answers with the token generated in the state folder, and stops
// it with KillSignal within TimeoutStopSec.
func TestUnitRunsTheDaemon(t *testing.T) {
	u := loadUnit(t, deployFile(unitName))
	r := prepareUnitRun(t, u, mustBinary(t))
	argv := r.argv
	nofile := u.one("Service", "LimitNOFILE")
	if nofile == "" {
		t.Fatal("no LimitNOFILE=: the daemon sizes -max-peers to the descriptor limit")
	}
	if p, err := exec.LookPath("prlimit"); err == nil {
		lim := "--nofile=" + nofile + ":" + nofile
		if out, err := exec.Command(p, lim, "true").CombinedOutput(); err == nil {
			argv = append([]string{p, lim, "--"}, argv...)
		} else {
			fmt.Fprintf(os.Stderr, "SKIP (part): %s: cannot apply LimitNOFILE=%s here (%v, %s): running with this process's limit\n",
				t.Name(), nofile, err, strings.TrimSpace(string(out)))
		}
	}
	d := startDaemon(t, argv, childEnv(r.env), r.apiAddr, r.state)
	token := d.waitUp(20 * time.Second)
	d.checkAPI(token)
	if !fileExists(r.downloads) {
		t.Fatalf("download root %s not created", r.downloads)
	}
	if strings.HasPrefix(argv[0], "/") && strings.HasSuffix(argv[0], "prlimit") &&
		strings.Contains(d.log.String(), "file descriptors allowed") {
		t.Fatalf("LimitNOFILE=%s leaves too few descriptors for the default -max-peers:\n%s", nofile, d.log.String())
	}

	sig, err := signalByName(u.one("Service", "KillSignal"))
	if err != nil {
		t.Fatal(err)
	}
	stopTimeout, err := systemdSeconds(u.one("Service", "TimeoutStopSec"))
	if err != nil || stopTimeout <= 5*time.Second {
		t.Fatalf("TimeoutStopSec=%q (%v): want more than the daemon's own 5 s stop", u.one("Service", "TimeoutStopSec"), err)
	}
	d.stopWithin(sig, stopTimeout)
	if !strings.Contains(d.log.String(), "stopping") {
		t.Fatalf("no clean stop in the log:\n%s", d.log.String())
	}
}
