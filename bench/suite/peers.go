package suite

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotorrentserver/netio/peertest"
)

//go:embed lt_bench.py
var ltBenchScript []byte

// ltPeer is lt_bench.py: Port is where it listens; dial asks it to connect
// to a peer once it seeds.
type ltPeer struct {
	*peertest.Proc
	connectFile string
	script      string
}

// startLT starts lt_bench.py for torrent with its data folder dir and
// returns once it listens. connections 0 keeps libtorrent's default limit;
// peers are dialed at once.
func startLT(tb *scope, torrent, dir string, connections int, peers ...string) *ltPeer {
	return startLTWith(tb, ltOpts{torrents: []string{torrent}, dir: dir, connections: connections, peers: peers})
}

// ltOpts are lt_bench.py's options (see the script).
type ltOpts struct {
	torrents    []string
	torrentDir  string // every .torrent in it, after torrents
	dir         string
	connections int    // 0: libtorrent's default limit
	preset      string // "" (libtorrent's defaults) or "high_performance_seed"
	upLimit     int64  // upload_rate_limit, bytes/s; 0: none
	globalClass bool   // every address in the global peer class (see the script)
	resumeDir   string // resume data, from ltPrepare
	peers       []string
	encrypt     bool // MSE forced, RC4 only, both ways
	utpOnly     bool // TCP off both ways, uTP on
	sockBuf     int  // SO_RCVBUF/SO_SNDBUF, bytes; 0: the kernel's default
	peerFlags   bool // report the transport and encryption of the peers seen (peersSeen)
}

func startLTWith(tb *scope, o ltOpts) *ltPeer {
	s, args := ltCommand(tb, o)
	s.Proc = peertest.Start(tb, peertest.LibtorrentPython, args...)
	line, err := s.WaitLine("PORT ", 20*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Sscanf(line, "PORT %d", &s.Port)
	return s
}

// ltPrepare checks o's torrents once and saves their resume data to
// o.resumeDir, so that seeders started with it do not check again:
// libtorrent checks auto-managed torrents one at a time, about one a
// second (200 small torrents: over 3 minutes per start).
func ltPrepare(tb *scope, o ltOpts) {
	o.connections, o.preset, o.upLimit, o.peers = 0, "", 0, nil
	s, args := ltCommand(tb, o)
	s.Proc = peertest.Start(tb, peertest.LibtorrentPython, append(args, "--prepare", "--timeout", "600")...)
	defer s.Stop()
	if _, err := s.WaitLine("PREPARED", 10*time.Minute); err != nil {
		tb.Fatal(err)
	}
}

// ltCommand writes the script and returns its arguments for o.
func ltCommand(tb *scope, o ltOpts) (*ltPeer, []string) {
	peertest.Require(tb, "libtorrent")
	tmp := tb.TempDir()
	s := &ltPeer{connectFile: filepath.Join(tmp, "connect"), script: filepath.Join(tmp, "lt_bench.py")}
	if err := os.WriteFile(s.script, ltBenchScript, 0o755); err != nil {
		tb.Fatal(err)
	}
	args := []string{s.script, "--dir", o.dir, "--connect-file", s.connectFile}
	for _, t := range o.torrents {
		args = append(args, "--torrent", t)
	}
	if o.torrentDir != "" {
		args = append(args, "--torrent-dir", o.torrentDir)
	}
	if o.connections > 0 {
		args = append(args, "--connections", fmt.Sprint(o.connections))
	}
	if o.preset != "" {
		args = append(args, "--preset", o.preset)
	}
	if o.upLimit > 0 {
		args = append(args, "--upload-rate-limit", fmt.Sprint(o.upLimit))
	}
	if o.globalClass {
		args = append(args, "--global-class")
	}
	if o.resumeDir != "" {
		args = append(args, "--resume-dir", o.resumeDir)
	}
	if o.encrypt {
		args = append(args, "--encrypt")
	}
	if o.utpOnly {
		args = append(args, "--utp-only")
	}
	if o.sockBuf > 0 {
		args = append(args, "--socket-buffers", fmt.Sprint(o.sockBuf))
	}
	if o.peerFlags {
		args = append(args, "--peer-flags")
	}
	for _, p := range o.peers {
		args = append(args, "--peer", p)
	}
	return s, args
}

// ltSeeder is lt_bench.py seeding, sampled for CPU and memory.
type ltSeeder struct {
	*ltPeer
	samp *sampler
}

// startLTSeeder starts lt_bench.py on the data in dir and waits until its
// check has passed.
func startLTSeeder(tb *scope, torrent, dir string, connections int) *ltSeeder {
	return startLTSeederWith(tb, ltOpts{torrents: []string{torrent}, dir: dir, connections: connections})
}

func startLTSeederWith(tb *scope, o ltOpts) *ltSeeder {
	p := startLTWith(tb, o)
	if _, err := p.WaitLine("SEEDING", 5*time.Minute); err != nil {
		tb.Fatal(err)
	}
	pid, err := findChild(p.script)
	if err != nil {
		tb.Fatal(err)
	}
	s := &ltSeeder{ltPeer: p, samp: startSampler(pid, 0)}
	tb.Cleanup(s.samp.close)
	return s
}

func (s *ltPeer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// dial makes the seeder connect to addr within about 20 ms.
func (s *ltPeer) dial(addr string) error {
	f, err := os.OpenFile(s.connectFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(addr + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// peerTally is what a seeder started with peerFlags has seen: peers
// connected past their handshake so far, how many of them over uTP, how
// many encrypted with RC4.
type peerTally struct{ n, utp, rc4 int }

// peersSeen is the seeder's last PEERS line.
func (s *ltPeer) peersSeen() peerTally {
	var t peerTally
	out := s.Output()
	if i := strings.LastIndex(out, "PEERS "); i >= 0 {
		fmt.Sscanf(out[i:], "PEERS %d %d %d", &t.n, &t.utp, &t.rc4)
	}
	return t
}

// checkPeers waits (at most 2 s: the seeder looks five times a second) for
// a peer the seeder had not seen at before, and checks that every new one
// came over uTP (wantUTP) or TCP, and with RC4 (wantRC4) or in plaintext.
func (s *ltPeer) checkPeers(before peerTally, wantUTP, wantRC4 bool) error {
	now := s.peersSeen()
	for deadline := time.Now().Add(2 * time.Second); now.n == before.n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		now = s.peersSeen()
	}
	n, utp, rc4 := now.n-before.n, now.utp-before.utp, now.rc4-before.rc4
	want := func(b bool) int {
		if b {
			return n
		}
		return 0
	}
	if n == 0 || utp != want(wantUTP) || rc4 != want(wantRC4) {
		return fmt.Errorf("suite: the seeder saw %d new peers, %d over uTP, %d with RC4 (want uTP %v, RC4 %v)", n, utp, rc4, wantUTP, wantRC4)
	}
	return nil
}

// measured is one timed run of one client.
type measured struct {
	wall  time.Duration
	cpu   time.Duration
	hwm   int64         // peak RSS, bytes
	bytes int64         // verified payload bytes
	peers int64         // peers connected at completion, where the scenario counts them
	exit  time.Duration // ours: start to exit
	xfer  time.Duration // scenario i: first peer connected to completion
	err   error
}

// watchPeer measures a client started through peertest: its PID is found
// by a mark on its command line, then sampled until done returns.
func watchPeer(start time.Time, marks []string, done func() error) measured {
	// Right after the fork the child still shows our command line: retry
	// until it has exec'd.
	pid, err := findChild(marks...)
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		pid, err = findChild(marks...)
	}
	if err != nil {
		return measured{err: err}
	}
	s := startSampler(pid, 0)
	defer s.close()
	err = done()
	m := measured{wall: time.Since(start), err: err}
	u := s.now()
	m.cpu, m.hwm = u.CPU, u.HWM
	return m
}

// peerNote says how each real client was set up, for the reports.
func peerNote() string {
	return strings.Join([]string{
		"python3-libtorrent runs bench/suite/lt_bench.py: DHT, LSD, UPnP, NAT-PMP and PEX off, plaintext, TCP only (between two libtorrents on loopback with the kernel's default socket buffers uTP holds a transfer to about 5 MB/s), unless a row's suffix says otherwise.",
		"aria2c and transmission-cli run with peertest's settings (DHT, LPD, PEX, UPnP/NAT-PMP off).",
	}, " ")
}
