package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeInstall stages an install as a package build would (DESTDIR,
// PREFIX=/usr): an executable that prints its usage, and a unit whose
// ExecStart names it and that systemd-analyze accepts in that tree.
func TestMakeInstall(t *testing.T) {
	requireTool(t, "make")
	dest := t.TempDir()
	build := filepath.Join(t.TempDir(), "gotorrentserver")
	cmd := exec.Command("make", "--no-print-directory", "install", "install-systemd",
		"DESTDIR="+dest, "PREFIX=/usr", "BIN="+build, "GO="+goTool())
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "usr/bin/gotorrentserver")
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v %v, want mode 0755", err, fi)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: gotorrentserver") || !strings.Contains(string(out), "serve") {
		t.Fatalf("%s -h: %v\n%s", bin, err, out)
	}

	unitPath := filepath.Join(dest, "etc/systemd/system", unitName)
	u := loadUnit(t, unitPath)
	env, _ := u.environment()
	argv, err := u.execStart(env)
	if err != nil || argv[0] != "/usr/bin/gotorrentserver" {
		t.Fatalf("installed unit runs %q (%v), want /usr/bin/gotorrentserver", argv, err)
	}
	if !fileExists(filepath.Join(dest, "etc/sysusers.d/gotorrentserver.conf")) {
		t.Fatal("sysusers.d entry for the unit's user not installed")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		skipLoud(t, "systemd-analyze is not installed: the installed unit is not verified")
	}
	if out, err := verifyUnit(t, dest, unitPath); err != nil {
		t.Fatalf("systemd-analyze verify on the installed tree: %v\n%s", err, out)
	}
}
