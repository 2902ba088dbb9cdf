package deploy_test

import (
	"debug/elf"
	"fmt"
	"net"
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

// image is deploy/Dockerfile as the tests read it.
type image struct {
	build, final stage
	goBuild      string   // the build stage's go build command line
	binOut       string   // where it writes the binary
	entrypoint   []string // the final stage's, exec form
	flags        map[string]string
}

func loadImage(t *testing.T) image {
	t.Helper()
	stages, err := readDockerfile(deployFile("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a runtime stage, have %d stages", len(stages))
	}
	im := image{build: stages[0], final: stages[len(stages)-1], flags: map[string]string{}}
	if !strings.HasPrefix(im.build.from, "golang:1.26") || im.build.name == "" {
		t.Fatalf("build stage FROM %s AS %q: want a named golang:1.26 stage", im.build.from, im.build.name)
	}
	if strings.HasPrefix(im.final.from, "golang") {
		t.Fatalf("runtime stage FROM %s: the toolchain image is no runtime", im.final.from)
	}
	for _, run := range im.build.all("RUN") {
		if strings.Contains(run, "go build") {
			im.goBuild = run
		}
	}
	m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(im.goBuild)
	if m == nil || !strings.Contains(im.goBuild, "CGO_ENABLED=0") || !strings.Contains(im.goBuild, "-trimpath") {
		t.Fatalf("build stage RUN %q: want CGO_ENABLED=0 go build -trimpath -o FILE", im.goBuild)
	}
	im.binOut = m[1]
	im.entrypoint, err = execForm(im.final.last("ENTRYPOINT"))
	if err != nil {
		t.Fatalf("ENTRYPOINT: %v (shell form would not pass signals to the daemon)", err)
	}
	copied := false
	for _, c := range im.final.all("COPY") {
		f := strings.Fields(c)
		copied = copied || slices.Equal(f, []string{"--from=" + im.build.name, im.binOut, im.entrypoint[0]})
	}
	if !copied {
		t.Fatalf("the runtime stage does not COPY --from=%s %s %s", im.build.name, im.binOut, im.entrypoint[0])
	}
	if len(im.entrypoint) < 2 || im.entrypoint[1] != "serve" {
		t.Fatalf("ENTRYPOINT %q: want BINARY serve flags...", im.entrypoint)
	}
	args := im.entrypoint[2:]
	if c := im.final.last("CMD"); c != "" {
		cmdArgs, err := execForm(c)
		if err != nil {
			t.Fatalf("CMD: %v", err)
		}
		args = slices.Concat(args, cmdArgs)
	}
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			t.Fatalf("ENTRYPOINT/CMD argument %q is not a flag", args[i])
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			im.flags[args[i]] = args[i+1]
			i++
		} else {
			im.flags[args[i]] = ""
		}
	}
	return im
}

// serveFlags lists the flags `gotorrentserver serve -h` documents.
func serveFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags["-"+m[1]] = true
	}
	if !flags["-state"] {
		t.Fatalf("serve -h lists no -state:\n%s", out)
	}
	return flags
}

func TestDockerfileDeclares(t *testing.T) {
	im := loadImage(t)
	known := serveFlags(t, mustBinary(t))
	for f := range im.flags {
		if !known[f] {
			t.Errorf("ENTRYPOINT flag %s is not a serve flag", f)
		}
	}
	for _, f := range []string{"-state", "-downloads", "-peer-addr", "-api-addr"} {
		if im.flags[f] == "" {
			t.Fatalf("ENTRYPOINT sets no %s", f)
		}
	}
	if _, ok := im.flags["-no-auth"]; ok {
		t.Fatal("ENTRYPOINT passes -no-auth: the API is reachable from outside the container")
	}
	if host, _, _ := net.SplitHostPort(im.flags["-api-addr"]); host != "0.0.0.0" && host != "" && host != "::" {
		t.Fatalf("-api-addr %s: published ports cannot reach a loopback API", im.flags["-api-addr"])
	}

	user := im.final.last("USER")
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Fatalf("final USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot checks it)", user)
	}
	var vols []string
	for _, v := range im.final.all("VOLUME") {
		vols = append(vols, volumes(v)...)
	}
	for _, f := range []string{"-state", "-downloads"} {
		if !slices.Contains(vols, im.flags[f]) {
			t.Errorf("%s %s is not a VOLUME (%q): it would be lost with the container", f, im.flags[f], vols)
		}
	}
	var exposed []string
	for _, e := range im.final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(e)...)
	}
	_, peerPort, _ := net.SplitHostPort(im.flags["-peer-addr"])
	_, apiPort, _ := net.SplitHostPort(im.flags["-api-addr"])
	for _, want := range []string{peerPort + "/tcp", peerPort + "/udp", apiPort} {
		if !slices.Contains(exposed, want) && !slices.Contains(exposed, want+"/tcp") {
			t.Errorf("EXPOSE %q lacks %s", exposed, want)
		}
	}
	if s := im.final.last("STOPSIGNAL"); s != "" && s != "SIGTERM" && s != "SIGINT" {
		t.Errorf("STOPSIGNAL %s: the daemon stops cleanly on SIGTERM or SIGINT", s)
	}
	if _, err := healthcheckCmd(im.final.last("HEALTHCHECK")); err != nil {
		t.Error(err)
	}
}

// TestDockerfileCommandsRun replays the image without a docker engine: the
// build stage's go build line, then the ENTRYPOINT with the volumes and
// ports mapped to this machine, then the HEALTHCHECK command against it.
func TestDockerfileCommandsRun(t *testing.T) {
	im := loadImage(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "out", filepath.Base(im.binOut))
	// The build stage copies the repository to its WORKDIR: run the line at
	// the repository's root, with the output moved into tmp.
	line := strings.Replace(im.goBuild, "-o "+im.binOut, "-o "+bin, 1)
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(goTool())+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: the runtime stage may lack its libc", bin)
		}
	}
	f.Close()

	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, containerAPIPort, _ := net.SplitHostPort(im.flags["-api-addr"])
	argv := []string{bin}
	for i, a := range im.entrypoint[1:] {
		switch prev := im.entrypoint[i]; prev {
		case "-state", "-downloads":
			a = filepath.Join(tmp, a)
		case "-peer-addr":
			a = "127.0.0.1:0"
		case "-api-addr":
			a = apiAddr
		}
		argv = append(argv, a)
	}
	state := filepath.Join(tmp, im.flags["-state"])
	d := startDaemon(t, argv, childEnv(nil), apiAddr, state)
	token := d.waitUp(20 * time.Second)
	d.checkAPI(token)

	// The health check, as the image's shell would run it, mapped the same way.
	hc, _ := healthcheckCmd(im.final.last("HEALTHCHECK"))
	hc = strings.ReplaceAll(hc, im.flags["-state"], state)
	for _, h := range []string{"127.0.0.1:", "localhost:"} {
		hc = strings.ReplaceAll(hc, h+containerAPIPort, apiAddr)
	}
	health := func() error {
		c := exec.Command("/bin/sh", "-c", hc)
		c.Env = childEnv(nil)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	haveCurl := !strings.Contains(hc, "curl ") || func() bool { _, err := exec.LookPath("curl"); return err == nil }()
	if !haveCurl {
		fmt.Fprintf(os.Stderr, "SKIP (part): %s: curl is not installed, HEALTHCHECK not replayed\n", t.Name())
	} else if err := health(); err != nil {
		t.Fatalf("HEALTHCHECK %s fails on a healthy daemon: %v", hc, err)
	}

	sig := syscall.SIGTERM
	if im.final.last("STOPSIGNAL") == "SIGINT" {
		sig = syscall.SIGINT
	}
	d.stopWithin(sig, 10*time.Second) // docker stop's default grace
	if haveCurl {
		if err := health(); err == nil {
			t.Fatalf("HEALTHCHECK %s passes with the daemon stopped", hc)
		}
	}
}
