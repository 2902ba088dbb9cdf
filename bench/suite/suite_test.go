package suite

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/bench/swarm"
)

func TestMedianAndPercentile(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3,1,2 = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4,1,3,2 = %v", m)
	}
	if m := median([]float64{math.NaN(), 5}); m != 5 {
		t.Errorf("median ignoring NaN = %v", m)
	}
	if !math.IsNaN(median(nil)) || f(median(nil), 1) != "–" {
		t.Error("median of nothing should print as a dash")
	}
	xs := make([]float64, 100)
	for i := range xs {
		xs[i] = float64(100 - i)
	}
	if p := percentile(xs, 0.5); p != 50 {
		t.Errorf("p50 of 1..100 = %v", p)
	}
	if p := percentile(xs, 0.99); p != 99 {
		t.Errorf("p99 of 1..100 = %v", p)
	}
	if xs[0] != 100 {
		t.Error("percentile sorted its input in place")
	}
}

func TestRotateGivesEachClientTheFirstTurn(t *testing.T) {
	xs := []string{"a", "b", "c"}
	for r, want := range []string{"abc", "bca", "cab", "abc"} {
		if got := strings.Join(rotate(xs, r), ""); got != want {
			t.Errorf("run %d: %s, want %s", r, got, want)
		}
	}
	if strings.Join(xs, "") != "abc" {
		t.Error("rotate changed its input")
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := &table{title: "x", cols: []string{"a", "b"}}
	tb.add("1", "2")
	tb.note("n %d", 3)
	want := "### x\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n- n 3\n"
	if got := tb.markdown(); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

// The kernel's account of a child we start must show the CPU it burned and
// the memory it touched, read the same way for our daemon and the peers.
func TestUsageOfAChildProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	mark := "suite-usage-" + t.Name()
	// Touch 64 MiB, burn CPU for ~0.3 s, then sleep so we can read it.
	script := `import time,sys
b=bytearray(64<<20)
for i in range(0,len(b),4096): b[i]=1
t=time.time()
while time.time()-t<0.3: pass
print("ready",flush=True)
time.sleep(30)`
	cmd := exec.Command("python3", "-c", script, mark)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skip("no python3:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ready := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(out).ReadString('\n')
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the child never got ready")
	}
	pid, err := findChild(mark)
	if err != nil || pid != cmd.Process.Pid {
		t.Fatalf("findChild = %d, %v; started %d", pid, err, cmd.Process.Pid)
	}
	u, err := readUsage(pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU < 250*time.Millisecond || u.CPU > 5*time.Second {
		t.Errorf("CPU %v for a 0.3 s busy loop", u.CPU)
	}
	if u.HWM < 64<<20 || u.RSS < 64<<20 || u.RSS > u.HWM {
		t.Errorf("RSS %d, peak %d after touching 64 MiB", u.RSS, u.HWM)
	}
	if _, err := findChild(mark, "no-such-mark"); err == nil {
		t.Error("findChild matched a mark the command line lacks")
	}
}

func TestScopeTurnsFatalAndSkipIntoErrors(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	s := newScope("x", dir, &log)
	var tmp string
	cleaned := 0
	skip, err := s.run(func(tb *scope) {
		tmp = tb.TempDir()
		tb.Cleanup(func() { cleaned++ })
		tb.Fatalf("boom %d", 7)
		t.Error("Fatal returned")
	})
	if skip || err == nil || err.Error() != "boom 7" || cleaned != 1 {
		t.Errorf("Fatal: skip %v, err %v, cleanups %d", skip, err, cleaned)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) || filepath.Dir(tmp) != dir {
		t.Errorf("temp folder %s left behind or outside %s: %v", tmp, dir, err)
	}
	skip, err = newScope("y", dir, &log).run(func(tb *scope) { tb.Skip("SKIP (tool missing): x") })
	if !skip || err == nil || !strings.Contains(err.Error(), "tool missing") {
		t.Errorf("Skip: skip %v, err %v", skip, err)
	}
}

func TestVerifiedBytesCountsOnlyMatchingPieces(t *testing.T) {
	p := swarm.Payload{Seed: 5, Size: 3<<20 + 100}
	_, mi, err := swarm.MakeTorrent(p, "v.bin", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v.bin")
	if err := swarm.WritePayload(p, path); err != nil {
		t.Fatal(err)
	}
	if got := verifiedBytes(path, mi); got != p.Size {
		t.Errorf("intact file: %d verified bytes, want %d", got, p.Size)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte{0}, 1<<20+5) // corrupt piece 1
	f.Close()
	if got := verifiedBytes(path, mi); got != p.Size-1<<20 {
		t.Errorf("one corrupt piece: %d verified bytes, want %d", got, p.Size-1<<20)
	}
	os.Truncate(path, 2<<20)
	if got := verifiedBytes(path, mi); got != 1<<20 {
		t.Errorf("truncated after piece 1: %d verified bytes, want %d", got, 1<<20)
	}
	if got := verifiedBytes(path+".missing", mi); got != 0 {
		t.Errorf("missing file: %d verified bytes", got)
	}
}
