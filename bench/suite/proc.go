package suite

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// usage is what the kernel says about one process at one moment.
type usage struct {
	CPU  time.Duration // user + system
	RSS  int64         // VmRSS, bytes
	Anon int64         // RssAnon: RSS less file-backed pages (mmap'd data), bytes
	HWM  int64         // VmHWM (peak RSS), bytes
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports here.
const clockTick = 100

// readUsage reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status
// (VmRSS, VmHWM).
func readUsage(pid int) (usage, error) {
	var u usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces: fields count from after
	// its closing parenthesis, where field 3 (state) is index 0.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return u, fmt.Errorf("suite: /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("suite: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	u.CPU = time.Duration(ut+st) * time.Second / clockTick
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &u.RSS
		case "VmHWM":
			dst = &u.HWM
		case "RssAnon":
			dst = &u.Anon
		default:
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		*dst = kb << 10
	}
	return u, nil
}

// findChild returns the PID of our child process whose command line holds
// every one of marks (peertest does not expose the PIDs it starts).
func findChild(marks ...string) (int, error) {
	self := os.Getpid()
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		cl, err := os.ReadFile(filepath.Join(filepath.Dir(e), "cmdline"))
		if err != nil {
			continue
		}
		all := true
		for _, m := range marks {
			all = all && bytes.Contains(cl, []byte(m))
		}
		if all {
			return strconv.Atoi(filepath.Base(filepath.Dir(e)))
		}
	}
	return 0, fmt.Errorf("suite: no child process with %q", marks)
}

// sampler reads a process's usage every 10 ms and keeps the last reading,
// for processes that exit by themselves before we can read them (the
// reading is then at most 10 ms old). It also records a trace when asked.
type sampler struct {
	pid   int
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	last  usage
	trace []traceRow
	every time.Duration // trace period; 0: no trace
	t0    time.Time
}

type traceRow struct {
	at time.Duration
	u  usage
}

func startSampler(pid int, traceEvery time.Duration) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{}), every: traceEvery, t0: time.Now()}
	go s.loop()
	return s
}

func (s *sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var lastTrace time.Time
	for {
		u, err := readUsage(s.pid)
		if err == nil {
			s.mu.Lock()
			s.keep(u)
			if s.every > 0 && time.Since(lastTrace) >= s.every {
				lastTrace = time.Now()
				s.trace = append(s.trace, traceRow{time.Since(s.t0), u})
			}
			s.mu.Unlock()
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// now reads the process at once if it is still there, else returns the
// last sample.
func (s *sampler) now() usage {
	if u, err := readUsage(s.pid); err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.keep(u)
		return s.last
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// keep stores u as the last reading. The peak only grows: a process that
// has exited but is not yet reaped reads with no memory lines at all.
// Caller holds s.mu.
func (s *sampler) keep(u usage) {
	u.HWM = max(u.HWM, s.last.HWM)
	s.last = u
}

func (s *sampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// writeTrace writes the recorded samples as CSV (seconds, CPU seconds,
// RSS MiB), the fallback when the daemon cannot write pprof profiles.
func (s *sampler) writeTrace(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("seconds,cpu_seconds,rss_mib\n")
	for _, r := range s.trace {
		fmt.Fprintf(&b, "%.2f,%.2f,%.1f\n", r.at.Seconds(), r.u.CPU.Seconds(), float64(r.u.RSS)/(1<<20))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
