package suite

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// env is what the scenarios of one suite run share.
type env struct {
	opt      Options
	ours     *ours
	log      io.Writer
	mu       sync.Mutex
	payloads map[int64]*payloadFiles
	notes    map[string]string // global notes, once each
}

// payloadFiles is a deterministic payload written once to the work folder
// and its torrent (1 MiB pieces, no tracker).
type payloadFiles struct {
	p       swarm.Payload
	dir     string // the folder holding the file: the "-o"/"--dir" of a seeder
	path    string // dir/name
	torrent string // .torrent path
	raw     []byte // .torrent bytes
	hashes  []byte
	mi      *metainfo.MetaInfo
}

const pieceLen = 1 << 20

// payload returns the payload of size bytes, writing it on first use.
func (e *env) payload(size int64) (*payloadFiles, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pf := e.payloads[size]; pf != nil {
		return pf, nil
	}
	name := fmt.Sprintf("payload-%dMiB.bin", size>>20)
	pf := &payloadFiles{p: swarm.Payload{Seed: uint64(size), Size: size}, dir: filepath.Join(e.opt.WorkDir, "data", name+".d")}
	pf.path = filepath.Join(pf.dir, name)
	var err error
	if pf.hashes, err = swarm.PieceHashes(pf.p, pieceLen); err != nil {
		return nil, err
	}
	if pf.raw, err = swarm.TorrentFile(pf.p, pieceLen, name, pf.hashes, ""); err != nil {
		return nil, err
	}
	if pf.mi, err = metainfo.Parse(pf.raw); err != nil {
		return nil, err
	}
	pf.torrent = filepath.Join(e.opt.WorkDir, name+".torrent")
	if err := os.WriteFile(pf.torrent, pf.raw, 0o644); err != nil {
		return nil, err
	}
	if err := swarm.WritePayload(pf.p, pf.path); err != nil {
		return nil, err
	}
	e.payloads[size] = pf
	return pf, nil
}

// trackedTorrent writes the payload's torrent with an announce URL (same
// infohash) to dir.
func (pf *payloadFiles) trackedTorrent(dir, announce string) (string, error) {
	b, err := swarm.TorrentFile(pf.p, pieceLen, pf.mi.Name, pf.hashes, announce)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tracked-"+pf.mi.Name+".torrent")
	return path, os.WriteFile(path, b, 0o644)
}

func (e *env) noteOnce(key, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.notes[key]; !ok {
		e.notes[key] = text
		fmt.Fprintln(e.log, "note:", text)
	}
}

func (e *env) logf(format string, a ...any) { fmt.Fprintf(e.log, format+"\n", a...) }

// freshDir empties dir and flushes dirty pages, so no run inherits the
// writeback of the previous one (the timing rule).
func freshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return exec.Command("sync").Run()
}

// warmMemory touches n bytes of fresh memory and hands it back to the
// kernel just before a timed download. On this kind of VM (virtio-balloon
// free page reporting) memory the guest left free for a few seconds goes
// back to the host, and the next use of each page faults on the host: a
// 1 GiB write into the page cache then cost 2.5 s of system CPU instead of
// 0.2 s, charged to whichever client happened to write next. Warming first
// gives every client the same footing; its cost is the benchmark's.
func warmMemory(n int64) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	debug.FreeOSMemory()
}

// verifiedBytes hashes the downloaded file's pieces against the torrent
// and returns the bytes of pieces that match: the only bytes counted as
// downloaded.
func verifiedBytes(path string, mi *metainfo.MetaInfo) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var total, next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, mi.PieceLength)
			for {
				i := int(next.Add(1) - 1)
				if i >= mi.NumPieces() {
					return
				}
				b := buf[:mi.PieceSize(i)]
				if _, err := f.ReadAt(b, int64(i)*mi.PieceLength); err != nil {
					continue
				}
				if sum := sha1.Sum(b); bytes.Equal(sum[:], mi.Pieces[i][:]) {
					total.Add(int64(len(b)))
				}
			}
		}()
	}
	wg.Wait()
	return total.Load()
}

// rotate returns xs starting at index r: run r's order, so each client goes
// first in turn.
func rotate[T any](xs []T, r int) []T {
	if len(xs) == 0 {
		return xs
	}
	r %= len(xs)
	return append(append([]T{}, xs[r:]...), xs[:r]...)
}

// machine describes the computer for the reports.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		if bytes.Contains(b, []byte(" sha_ni")) {
			cpu += " (SHA-NI)"
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	kern, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores%s, Linux %s", cpu, runtime.NumCPU(), mem, strings.TrimSpace(string(kern)))
}

// versions of the peers, as their own tools report them.
func (e *env) versions() string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return "missing"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	lt := "missing"
	if peertest.Have("libtorrent") {
		lt = "python3-libtorrent " + first(peertest.LibtorrentPython, "-c", "import libtorrent; print(libtorrent.__version__)")
	}
	ot := first("dpkg-query", "-W", "-f", "${Version}", "opentracker")
	return strings.Join([]string{
		"gotorrentserver " + e.ours.version,
		lt,
		first("aria2c", "--version"),
		first("transmission-cli", "--version"),
		"opentracker " + ot,
	}, "; ")
}
