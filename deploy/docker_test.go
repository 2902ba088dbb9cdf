package deploy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDockerImage builds deploy/Dockerfile and runs the image for real when
// a docker engine answers: the API through the published port with the
// token from the state volume, the daemon not root, healthy, and a clean
// docker stop. Without an engine it skips loudly; TestDockerfileDeclares
// and TestDockerfileCommandsRun check what can be checked without one.
func TestDockerImage(t *testing.T) {
	docker := requireTool(t, "docker")
	if out, err := exec.Command(docker, "info").CombinedOutput(); err != nil {
		skipLoud(t, "no docker engine (docker info: %v): the image is not built; %s",
			err, strings.TrimSpace(lastLine(string(out))))
	}
	im := loadImage(t)
	name := fmt.Sprintf("gts-deploy-test-%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(docker, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	build := exec.Command(docker, "build", "-q", "-f", "deploy/Dockerfile", "-t", name, ".")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(docker, "rmi", "-f", name).Run() })
	_, apiPort, _ := strings.Cut(im.flags["-api-addr"], ":")
	t.Cleanup(func() {
		exec.Command(docker, "rm", "-f", "-v", name).Run()
		exec.Command(docker, "volume", "rm", name+"-state", name+"-downloads").Run()
	})
	run("run", "-d", "--name", name, "--health-interval=1s", "--health-start-period=0s",
		"-v", name+"-state:"+im.flags["-state"], "-v", name+"-downloads:"+im.flags["-downloads"],
		"-p", "127.0.0.1::"+apiPort, name)
	hostAddr := run("port", name, apiPort+"/tcp")
	hostAddr = strings.Split(hostAddr, "\n")[0]

	deadline := time.Now().Add(30 * time.Second)
	var token string
	for {
		out, err := exec.Command(docker, "exec", name, "cat", im.flags["-state"]+"/api-token").Output()
		if err == nil {
			token = strings.TrimSpace(string(out))
			req, _ := http.NewRequest(http.MethodGet, "http://"+hostAddr+"/alldata", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				var all struct {
					Sessions []json.RawMessage `json:"sessions"`
				}
				err = json.NewDecoder(resp.Body).Decode(&all)
				resp.Body.Close()
				if resp.StatusCode == 200 && err == nil && all.Sessions != nil {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API on %s did not answer with the volume's token:\n%s", hostAddr, run("logs", name))
		}
		time.Sleep(200 * time.Millisecond)
	}
	status := run("exec", name, "cat", "/proc/1/status")
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			if uid, _ := strconv.Atoi(f[1]); uid == 0 {
				t.Fatalf("the daemon runs as root: %s", line)
			}
		}
	}
	for run("inspect", "-f", "{{.State.Health.Status}}", name) != "healthy" {
		if time.Now().After(deadline) {
			t.Fatalf("container not healthy:\n%s", run("inspect", "-f", "{{json .State.Health}}", name))
		}
		time.Sleep(500 * time.Millisecond)
	}
	run("stop", "-t", "10", name)
	if code := run("inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Fatalf("docker stop: exit code %s, want 0:\n%s", code, run("logs", name))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
