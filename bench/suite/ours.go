package suite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// ours is our daemon, built once from the working tree into the work
// folder, and the checker built beside it.
type ours struct {
	bin     string
	check   string
	help    map[string]string // subcommand -> its -h text, to detect flags
	version string
}

func buildOurs(root, dir string) (*ours, error) {
	o := &ours{bin: filepath.Join(dir, "gotorrentserver"), check: filepath.Join(dir, "gtscheck"), help: map[string]string{}}
	for _, b := range [][2]string{{o.bin, "./cmd/gotorrentserver"}, {o.check, "./bench/cmd/gtscheck"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("suite: go build %s: %v\n%s", b[1], err, out)
		}
	}
	for _, sub := range []string{"get", "serve"} {
		out, _ := exec.Command(o.bin, sub, "-h").CombinedOutput()
		o.help[sub] = string(out)
	}
	desc, _ := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	gov, _ := exec.Command("go", "version").Output()
	o.version = strings.TrimSpace(string(desc)) + " (" + strings.TrimPrefix(strings.TrimSpace(string(gov)), "go version ") + ")"
	return o, nil
}

// has reports whether subcommand sub takes -flag.
func (o *ours) has(sub, flag string) bool {
	h := o.help[sub]
	return strings.Contains(h, "-"+flag+" ") || strings.Contains(h, "-"+flag+"\n")
}

// hasServe reports whether `serve` exists (it prints its usage for -h).
func (o *ours) hasServe() bool { return strings.Contains(o.help["serve"], "-state") }

// profileArgs asks the daemon for pprof profiles named after tag when
// profiling is on and sub supports it; otherwise the caller falls back to
// a CPU/RSS trace from /proc (traceEvery > 0).
func (e *env) profileArgs(sub, tag string) (args []string, traceEvery time.Duration) {
	if e.opt.ProfileDir == "" {
		return nil, 0
	}
	if e.ours.has(sub, "cpuprofile") && e.ours.has(sub, "memprofile") {
		return []string{"-cpuprofile", filepath.Join(e.opt.ProfileDir, tag+".cpu.pprof"),
			"-memprofile", filepath.Join(e.opt.ProfileDir, tag+".heap.pprof")}, 0
	}
	return nil, 100 * time.Millisecond
}

// finishProfile writes the /proc trace when the daemon could not profile.
func (e *env) finishProfile(p *ownProc, tag string, traceEvery time.Duration) {
	if traceEvery > 0 {
		path := filepath.Join(e.opt.ProfileDir, tag+".proc.csv")
		if err := p.samp.writeTrace(path); err == nil {
			e.noteOnce("profile-fallback", "The daemon has no -cpuprofile/-memprofile flags yet: "+
				"wrote CPU/RSS traces sampled from /proc (*.proc.csv) to "+e.opt.ProfileDir+" instead.")
		}
	}
}

// serveProc is `gotorrentserver serve` on loopback with its API client.
type serveProc struct {
	*ownProc
	api      *apiClient
	peerAddr string
	state    string
	dl       string
	trace    time.Duration
}

type serveOpts struct {
	state, downloads string
	maxPeers         int
	perTorrent       int
	unchokeSlots     int    // 0: the daemon's default
	maxUpKiB         int64  // global upload limit; 0: none
	tag              string // profile name
	extra            []string
}

// startServe runs serve on free loopback ports and waits until its API
// answers; started is the process start time.
func (e *env) startServe(tb *scope, o serveOpts) *serveProc {
	if !e.ours.hasServe() {
		tb.Skip("SKIP (not built yet): gotorrentserver has no serve command")
	}
	peer := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(tb))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(tb))
	args := []string{"serve", "-state", o.state, "-downloads", o.downloads, "-peer-addr", peer, "-api-addr", apiAddr}
	if o.maxPeers > 0 {
		args = append(args, "-max-peers", fmt.Sprint(o.maxPeers))
	}
	if o.perTorrent > 0 {
		args = append(args, "-max-peers-per-torrent", fmt.Sprint(o.perTorrent))
	}
	if o.unchokeSlots > 0 {
		args = append(args, "-unchoke-slots", fmt.Sprint(o.unchokeSlots))
	}
	if o.maxUpKiB > 0 {
		args = append(args, "-max-up", fmt.Sprint(o.maxUpKiB))
	}
	args = append(args, o.extra...)
	pa, trace := e.profileArgs("serve", o.tag)
	p := startOwn(tb, trace, e.ours.bin, append(args, pa...)...)
	s := &serveProc{ownProc: p, peerAddr: peer, state: o.state, dl: o.downloads, trace: trace}
	s.api = &apiClient{base: "http://" + apiAddr, hc: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if tok, err := os.ReadFile(filepath.Join(o.state, "api-token")); err == nil && s.api.token == "" {
			s.api.token = strings.TrimSpace(string(tok))
		}
		if s.api.token != "" {
			if code, _, err := s.api.do("GET", "/torrentdata?infohash="+strings.Repeat("0", 40), nil); err == nil && code != 401 {
				return s
			}
		}
		if p.exited() || time.Now().After(deadline) {
			_, err := p.waitFor("never printed", 0)
			tb.Fatalf("serve did not answer on %s: %v", apiAddr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiClient speaks the daemon's HTTP API with its bearer token.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func (a *apiClient) do(method, path string, body []byte) (int, []byte, error) {
	resp, err := a.send(method, path, body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// discard is do for load generation: the body is read and dropped, so the
// client spends as little CPU as it can beside the daemon.
func (a *apiClient) discard(path string) (int, error) {
	resp, err := a.send("GET", path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func (a *apiClient) send(method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	return a.hc.Do(req)
}

// addTorrent adds a .torrent, its data folder relative to the downloads
// root, started.
func (a *apiClient) addTorrent(dir string, torrent []byte) error {
	code, b, err := a.do("POST", "/addtorrentfile?start=true&path="+url.QueryEscape(dir), torrent)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("suite: addtorrentfile: HTTP %d: %s", code, b)
	}
	return err
}

// sessionState is the part of a session's JSON the suite reads.
type sessionState struct {
	InfoHash string  `json:"infohash"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	Uploaded int64   `json:"uploaded"`
	Peers    []struct {
		Connected bool `json:"connected"`
	} `json:"Peers"`
}

func (a *apiClient) torrent(ih metainfo.Hash) (sessionState, error) {
	var s sessionState
	code, b, err := a.do("GET", "/torrentdata?infohash="+ih.String(), nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("suite: torrentdata: HTTP %d: %s", code, b)
	}
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	return s, err
}

// cacheCounts are the read cache's lookups since start.
type cacheCounts struct {
	Hits   int64 `json:"cache_hits"`
	Misses int64 `json:"cache_misses"`
	Blocks int64 `json:"cache_block_reads"`
}

func (c cacheCounts) minus(o cacheCounts) cacheCounts {
	return cacheCounts{c.Hits - o.Hits, c.Misses - o.Misses, c.Blocks - o.Blocks}
}

// cache reads /alldata's upload object.
func (a *apiClient) cache() (cacheCounts, error) {
	code, b, err := a.do("GET", "/alldata", nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("suite: alldata: HTTP %d: %.200s", code, b)
	}
	if err != nil {
		return cacheCounts{}, err
	}
	var all struct {
		Upload *cacheCounts `json:"upload"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return cacheCounts{}, err
	}
	if all.Upload == nil {
		return cacheCounts{}, fmt.Errorf("suite: alldata has no upload object")
	}
	return *all.Upload, nil
}

// states counts sessions by state over /alldata.
func (a *apiClient) states() (map[string]int, error) {
	code, b, err := a.do("GET", "/alldata", nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("suite: alldata: HTTP %d: %.200s", code, b)
	}
	if err != nil {
		return nil, err
	}
	var all struct {
		Sessions []sessionState `json:"sessions"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range all.Sessions {
		out[s.State]++
	}
	return out, nil
}

// waitSeeding polls /alldata until n sessions seed.
func (a *apiClient) waitSeeding(n int, every, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.states()
		if err == nil && st["seeding"] >= n {
			return nil
		}
		if err == nil && st["error"] > 0 {
			return fmt.Errorf("suite: %d torrents in error (%v)", st["error"], st)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("suite: %v after %v, want %d seeding (%v)", st, timeout, n, err)
		}
		time.Sleep(every)
	}
}
