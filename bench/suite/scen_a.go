package suite

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gotorrentserver/netio/peertest"
)

// dlClient downloads the scenario's torrent into out and is measured.
type dlClient struct {
	name string
	run  func(out string, run int) measured
}

// scenarioA: every client downloads the same torrent from one
// python3-libtorrent seeder, one client at a time, in rotating order.
func scenarioA(e *env, tb *scope) []*table {
	size := int64(gib)
	if e.opt.Quick {
		size = 256 * mib
	}
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	timeout := 10 * time.Minute
	t := &table{title: fmt.Sprintf("a. Download %d MiB (1 MiB pieces) from one local python3-libtorrent seeder", size>>20),
		cols: []string{"client", "wall s", "MB/s", "CPU s/GiB", "peak RSS MiB", "runs ok"}}

	rows := &aRows{e: e, tb: tb, pf: pf, timeout: timeout}
	// Rows in this order: plaintext ours and libtorrent, the same over
	// RC4, over uTP, then the other plaintext clients.
	var clients, others []dlClient
	if e.opt.mode(modePlain) {
		clients, others = rows.plain(t)
	}
	// The encrypted and uTP rows each download from a seeder of their own
	// that speaks only that (so a row cannot quietly fall back to
	// plaintext TCP), and that reports its peers' flags to prove it.
	if e.opt.mode(modeRC4) {
		seed := startLTSeederWith(tb, ltOpts{torrents: []string{pf.torrent}, dir: pf.dir, encrypt: true, peerFlags: true})
		clients = append(clients, checked(rows.ours(oursRC4, "ours-rc4", seed, "-encryption", "require"), seed, false, true),
			checked(rows.lt(ltRC4, seed, ltOpts{encrypt: true}), seed, false, true))
	}
	if e.opt.mode(modeUTP) {
		seed := startLTSeederWith(tb, ltOpts{torrents: []string{pf.torrent}, dir: pf.dir, utpOnly: true,
			sockBuf: utpSocketBuffer, peerFlags: true})
		clients = append(clients, checked(rows.ours(oursUTP, "ours-utp", seed), seed, true, false),
			checked(rows.lt(ltUTP, seed, ltOpts{utpOnly: true, sockBuf: utpSocketBuffer}), seed, true, false))
	}
	clients = append(clients, others...)
	res := downloadTable(e, tb, t, clients, pf, "")
	t.note("Wall time runs from starting the process to its completion line (ours prints it as the last piece is verified); MB/s = bytes whose piece hashes match on disk afterwards / wall time. CPU and peak RSS (VmHWM) are the kernel's for the client process; libtorrent's peak RSS includes the downloaded data it maps into memory (it writes through mmap).")
	if e.opt.mode(modePlain) {
		t.note("aria2c first opens every connection with an encrypted (MSE) handshake and retries in plaintext about a second after the plaintext-only seeder hangs up; transmission-cli updates interest and unchokes only in its 10-second rechoke pulse, and is dialed by the seeder once it listens. Both costs are in their wall times.")
	}
	t.note("%s", peerNote())
	if e.opt.mode(modePlain) {
		t.note("Rows without a suffix download from a plaintext, TCP-only lt_bench.py seeder; ours runs `get -listen 127.0.0.1:0 -o DIR -peer SEEDER` with its default `-encryption prefer` (it dials MSE first; the seeder hangs up and ours redials in plaintext).")
	}
	if e.opt.mode(modeRC4) {
		t.note("(RC4) rows download from a second lt_bench.py seeder started with --encrypt (in_enc_policy and out_enc_policy pe_forced, allowed_enc_level rc4, prefer_rc4: plaintext handshakes, and MSE agreeing on plaintext, are refused), over TCP; ours adds `-encryption require`, libtorrent's downloader also runs with --encrypt. The seeder counts the peers it saw and checks each run's were all RC4-encrypted (peer_info.flags rc4_encrypted).")
	}
	if e.opt.mode(modeUTP) {
		t.note("(uTP) rows download from a third lt_bench.py seeder started with --utp-only (enable_incoming_tcp and enable_outgoing_tcp off, uTP on both ways: it still listens on TCP but closes what it accepts before a byte) and --socket-buffers %d (recv/send_socket_buffer_size, what our daemon asks for its UDP socket; with the kernel's default 208 KiB, libtorrent's uTP on loopback moves about 5 MB/s); ours runs the same command as the plaintext row and reaches uTP by itself: the seeder hangs up on its MSE attempt over TCP, then on its plaintext one, and ours then dials uTP (on the UDP port of the same number); libtorrent's downloader runs with the seeder's --utp-only and --socket-buffers. The seeder checks each run's peers were all on uTP (peer_info.flags bit 17, utp_socket) and plaintext.", utpSocketBuffer)
	}
	if r, p := res[oursRC4], res["gotorrentserver get"]; r != nil && p != nil {
		t.note("RC4 costs ours %.2f× the CPU of plaintext: %.2f ÷ %.2f CPU s/GiB.", r.med("cpu")/p.med("cpu"), r.med("cpu"), p.med("cpu"))
	}
	if o, l := res[oursUTP], res[ltUTP]; o != nil && l != nil {
		t.note("Over uTP ours moves %.1f MB/s, libtorrent %.1f MB/s: %.2f× libtorrent's rate.", o.med("mbps"), l.med("mbps"), o.med("mbps")/l.med("mbps"))
	}
	return []*table{t}
}

// aRows makes scenario a's clients.
type aRows struct {
	e       *env
	tb      *scope
	pf      *payloadFiles
	timeout time.Duration
}

// ours is `get` from seed, with extra flags.
func (a *aRows) ours(name, tag string, seed *ltSeeder, extra ...string) dlClient {
	return dlClient{name, func(out string, run int) measured {
		tag := fmt.Sprintf("a-%s-run%d", tag, run)
		pa, trace := a.e.profileArgs("get", tag)
		args := append([]string{"get", "-listen", "127.0.0.1:0", "-o", out, "-peer", seed.addr()}, pa...)
		p := startOwn(a.tb, trace, a.e.ours.bin, append(append(args, extra...), a.pf.torrent)...)
		return a.e.oursDownload(p, tag, trace, a.timeout)
	}}
}

// lt is lt_bench.py with o's settings downloading from seed.
func (a *aRows) lt(name string, seed *ltSeeder, o ltOpts) dlClient {
	return dlClient{name, func(out string, _ int) measured {
		start := time.Now()
		o.torrents, o.dir, o.peers = []string{a.pf.torrent}, out, []string{seed.addr()}
		p := startLTWith(a.tb, o)
		defer p.Stop()
		return watchPeer(start, []string{p.script}, func() error { _, err := p.WaitLine("SEEDING", a.timeout); return err })
	}}
}

// checked fails a run of c in which seed (started with peerFlags) did not
// see only new peers over uTP (wantUTP) or TCP, RC4 (wantRC4) or plaintext.
func checked(c dlClient, seed *ltSeeder, wantUTP, wantRC4 bool) dlClient {
	run := c.run
	c.run = func(out string, r int) measured {
		before := seed.peersSeen()
		m := run(out, r)
		if err := seed.checkPeers(before, wantUTP, wantRC4); err != nil && m.err == nil {
			m.err = err
		}
		return m
	}
	return c
}

// plain is scenario a's plaintext TCP rows, all from one libtorrent
// seeder: ours and libtorrent first, then the others.
func (a *aRows) plain(t *table) (first, others []dlClient) {
	tb, pf, timeout := a.tb, a.pf, a.timeout
	// aria2 finds peers only through a tracker; the others get a torrent
	// without one (same infohash) so the tracker cannot change what they do.
	seederTorrent, tracked := pf.torrent, ""
	aria := peertest.Have("aria2c") && canRunOpentracker()
	var tr *peertest.Tracker
	if aria {
		tr = peertest.Opentracker(tb, pf.mi.InfoHash)
		var err error
		if tracked, err = pf.trackedTorrent(tb.TempDir(), tr.HTTPURL); err != nil {
			tb.Fatal(err)
		}
		seederTorrent = tracked
	}
	seed := startLTSeeder(tb, seederTorrent, pf.dir, 0)
	if aria {
		if err := tr.WaitSwarm(pf.mi.InfoHash, 1, 0, 30*time.Second); err != nil {
			tb.Fatal(err)
		}
	}
	first = []dlClient{a.ours("gotorrentserver get", "ours", seed)}
	if peertest.Have("libtorrent") {
		first = append(first, a.lt("python3-libtorrent", seed, ltOpts{}))
	}
	if aria {
		others = append(others, dlClient{"aria2c", func(out string, _ int) measured {
			start := time.Now()
			p := peertest.Aria2(tb, peertest.Aria2Opts{Torrent: tracked, Dir: out, KeepSeeding: true, Timeout: timeout})
			defer p.Stop()
			return watchPeer(start, []string{"aria2c", out}, func() error { return p.WaitDone(timeout) })
		}})
	} else {
		t.note("aria2c not measured: it needs aria2c and opentracker (run as root).")
	}
	if peertest.Have("transmission-cli") {
		others = append(others, dlClient{"transmission-cli", func(out string, _ int) measured {
			start := time.Now()
			p := peertest.Transmission(tb, peertest.TransmissionOpts{Torrent: pf.torrent, Dir: out, Timeout: timeout})
			m := watchPeer(start, []string{"transmission-cli", out}, func() error {
				if err := p.WaitListen(10 * time.Second); err != nil {
					return err
				}
				if err := seed.dial(fmt.Sprintf("127.0.0.1:%d", p.Port)); err != nil {
					return err
				}
				return p.WaitDone(timeout)
			})
			p.Stop() // it flushes its write cache on exit
			return m
		}})
	}
	return first, others
}

// Scenario a's encrypted and uTP rows, named in its notes.
const (
	oursRC4 = "gotorrentserver get (RC4)"
	ltRC4   = "python3-libtorrent (RC4)"
	oursUTP = "gotorrentserver get (uTP)"
	ltUTP   = "python3-libtorrent (uTP)"
)

// utpSocketBuffer is what lt_bench.py asks for its sockets in the uTP rows:
// the 4 MiB our daemon asks for its UDP socket (netio's socketBuffer), so
// that both sides' uTP runs with the same buffers.
const utpSocketBuffer = 4 << 20

// downloadTable runs every client Runs times in rotating order, each into
// an emptied folder after a sync, and adds one row per client (medians).
// peerCol, when set, adds a column with the median of measured.peers.
// It returns each client's series, by name, for notes comparing rows.
func downloadTable(e *env, tb *scope, t *table, clients []dlClient, pf *payloadFiles, peerCol string) map[string]series {
	if peerCol != "" {
		t.cols = append(t.cols[:len(t.cols)-1], peerCol, t.cols[len(t.cols)-1])
	}
	var exits []float64
	res := map[string]series{}
	ok := map[string]int{}
	out := filepath.Join(e.opt.WorkDir, "out")
	for r := range e.opt.Runs {
		for _, c := range rotate(clients, r) {
			m := downloadOnce(tb, c, pf, out, r)
			e.logf("  run %d %-22s wall %6.2fs  %7.1f MB/s  cpu %5.2fs  peak %5.0f MiB  %v", r+1, c.name,
				m.wall.Seconds(), float64(m.bytes)/1e6/m.wall.Seconds(), m.cpu.Seconds(), float64(m.hwm)/mib, errText(m.err))
			if m.err != nil {
				t.note("%s, run %d: %v", c.name, r+1, firstLine(m.err))
				continue
			}
			s := res[c.name]
			if s == nil {
				s = series{}
				res[c.name] = s
			}
			ok[c.name]++
			s.add("wall", m.wall.Seconds())
			s.add("mbps", float64(m.bytes)/1e6/m.wall.Seconds())
			s.add("cpu", m.cpu.Seconds()/(float64(m.bytes)/gib))
			s.add("rss", float64(m.hwm)/mib)
			s.add("peers", float64(m.peers))
			if m.exit > 0 {
				exits = append(exits, (m.exit - m.wall).Seconds())
			}
		}
	}
	os.RemoveAll(out)
	for _, c := range clients {
		s := res[c.name]
		if s == nil {
			t.add(c.name, "–", "–", "–", "–", fmt.Sprintf("0/%d", e.opt.Runs))
			continue
		}
		row := []string{c.name, f(s.med("wall"), 2), f(s.med("mbps"), 1), f(s.med("cpu"), 2), f(s.med("rss"), 0)}
		if peerCol != "" {
			row = append(row, f(s.med("peers"), 0))
		}
		t.add(append(row, fmt.Sprintf("%d/%d", ok[c.name], e.opt.Runs))...)
	}
	if len(exits) > 0 {
		t.note("gotorrentserver get exits %.2f s (median) after its completion line; that shutdown is not in its wall time.", median(exits))
	}
	return res
}

// downloadOnce runs one client into the emptied folder out, after a sync
// and warming memory, and counts the bytes verified on disk.
func downloadOnce(tb *scope, c dlClient, pf *payloadFiles, out string, run int) measured {
	if err := freshDir(out); err != nil {
		tb.Fatal(err)
	}
	warmMemory(pf.mi.TotalLength + 512<<20)
	m := c.run(out, run)
	if m.err == nil {
		m.bytes = verifiedBytes(filepath.Join(out, pf.mi.Name), pf.mi)
		if m.bytes != pf.mi.TotalLength {
			m.err = fmt.Errorf("%d of %d bytes verified on disk", m.bytes, pf.mi.TotalLength)
		}
	}
	return m
}

// oursDownload measures `get` to its completion line, then waits for it
// to exit by itself (CPU and peak RSS are then the kernel's final account).
func (e *env) oursDownload(p *ownProc, tag string, trace, timeout time.Duration) measured {
	_, err := p.waitFor(" complete: ", timeout)
	m := measured{wall: time.Since(p.start), err: err}
	if err == nil {
		_, m.err = p.waitFor("", time.Minute)
	}
	m.exit = p.wall()
	u := p.usage()
	m.cpu, m.hwm = u.CPU, u.HWM
	e.finishProfile(p, tag, trace)
	return m
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILED: " + firstLine(err)
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// canRunOpentracker: the Debian build must run as root (it chroots).
func canRunOpentracker() bool {
	_, err := os.Stat(peertest.OpentrackerPath)
	return err == nil && os.Geteuid() == 0
}
