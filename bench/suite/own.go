package suite

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ownProc is a process the suite started itself (our daemon, our checker),
// so its exact exit time and rusage are known.
type ownProc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
	samp  *sampler
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	ended bool
	end   time.Time
	err   error
}

// startOwn runs bin with args in its own process group, collecting its
// output; tb's cleanup ends it. traceEvery > 0 records a CPU/RSS trace.
func startOwn(tb *scope, traceEvery time.Duration, bin string, args ...string) *ownProc {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &ownProc{name: filepath.Base(bin) + " " + firstArg(args), cmd: cmd}
	p.cond = sync.NewCond(&p.mu)
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	p.samp = startSampler(cmd.Process.Pid, traceEvery)
	go p.read(out)
	tb.Cleanup(p.stop)
	return p
}

func firstArg(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

func (p *ownProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		if len(p.lines) < 10000 {
			p.lines = append(p.lines, sc.Text())
		}
		p.mu.Unlock()
		p.cond.Broadcast()
	}
	io.Copy(io.Discard, r)
	err := p.cmd.Wait()
	end := time.Now()
	p.samp.close()
	p.mu.Lock()
	p.ended, p.end, p.err = true, end, err
	p.mu.Unlock()
	p.cond.Broadcast()
}

// waitFor waits until a line contains substr (or, with substr "", until
// the process exits) and returns that line.
func (p *ownProc) waitFor(substr string, timeout time.Duration) (string, error) {
	t := time.AfterFunc(timeout, p.cond.Broadcast)
	defer t.Stop()
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; substr != "" && i < len(p.lines); i++ {
			if strings.Contains(p.lines[i], substr) {
				return p.lines[i], nil
			}
		}
		if p.ended {
			if substr == "" {
				if p.err != nil {
					return "", fmt.Errorf("%s: %v; output:\n%s", p.name, p.err, p.tail())
				}
				return "", nil
			}
			return "", fmt.Errorf("%s exited (%v) before printing %q; output:\n%s", p.name, p.err, substr, p.tail())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: nothing with %q within %v; output:\n%s", p.name, substr, timeout, p.tail())
		}
		p.cond.Wait()
	}
}

func (p *ownProc) tail() string {
	return strings.Join(p.lines[max(0, len(p.lines)-20):], "\n")
}

// wall is the time from start to exit (or to now while running).
func (p *ownProc) wall() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return p.end.Sub(p.start)
	}
	return time.Since(p.start)
}

// usage is the kernel's account: rusage once exited (exact), /proc while
// running.
func (p *ownProc) usage() usage {
	p.mu.Lock()
	ended := p.ended
	p.mu.Unlock()
	if ended && p.cmd.ProcessState != nil {
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			// Not ru.Maxrss: os/exec starts the child with vfork, and
			// exec carries the parent's peak RSS into the child's, so
			// ru_maxrss reported the benchmark process's own peak
			// whenever that was higher. VmHWM, sampled every 10 ms,
			// is the child's alone.
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			return usage{CPU: cpu, HWM: p.samp.now().HWM, RSS: 0}
		}
	}
	return p.samp.now()
}

// interrupt sends SIGINT (the daemon's clean stop) and waits for the exit,
// killing the group after 10 s.
func (p *ownProc) interrupt() {
	p.mu.Lock()
	ended := p.ended
	p.mu.Unlock()
	if ended {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	if _, err := p.waitFor("", 10*time.Second); err != nil && !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.waitFor("", 5*time.Second)
	}
}

func (p *ownProc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

func (p *ownProc) stop() {
	if !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.waitFor("", 5*time.Second)
	}
}
