package suite

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// seeder is a client seeding the scenario's payload: where it listens, how
// to read its usage, how to stop it.
type seeder struct {
	addr  netip.AddrPort
	usage func() usage
	stop  func()
	// cache reads our daemon's read-cache counters (/alldata's upload
	// object); nil for other seeders.
	cache func() (cacheCounts, error)
}

// oursSeeding starts our daemon seeding pf with room for maxPeers peers:
// `get -seed` when it takes peer-limit flags, else `serve` with the torrent
// added over the API; it returns once the data is checked and seeding.
// extra are flags both commands take (-encryption).
func (e *env) oursSeeding(tb *scope, pf *payloadFiles, maxPeers int, tag string, extra ...string) (*seeder, error) {
	limit := fmt.Sprint(maxPeers)
	switch {
	case e.ours.has("get", "max-peers-per-torrent") && e.ours.has("get", "max-peers"):
		port := peertest.FreePort(tb)
		pa, trace := e.profileArgs("get", tag)
		args := append([]string{"get", "-seed", "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-o", pf.dir,
			"-max-peers", limit, "-max-peers-per-torrent", limit}, pa...)
		p := startOwn(tb, trace, e.ours.bin, append(append(args, extra...), pf.torrent)...)
		if _, err := p.waitFor(" complete: ", 5*time.Minute); err != nil {
			return nil, err
		}
		return &seeder{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), usage: p.samp.now,
			stop: func() { p.interrupt(); e.finishProfile(p, tag, trace) }}, nil
	case e.ours.hasServe():
		e.noteOnce("c-serve", "Scenario c runs our daemon as `serve` (torrent added over the API): `get` has no -max-peers/-max-peers-per-torrent flags, and its default of 80 peers per torrent would refuse most of the swarm.")
		sp := e.startServe(tb, serveOpts{state: tb.TempDir(), downloads: pf.dir, maxPeers: maxPeers, perTorrent: maxPeers,
			tag: tag, extra: extra})
		if err := sp.api.addTorrent("", pf.raw); err != nil {
			return nil, err
		}
		if err := waitTorrentSeeding(sp.api, pf.mi.InfoHash, 5*time.Minute); err != nil {
			return nil, err
		}
		return &seeder{addr: netip.MustParseAddrPort(sp.peerAddr), usage: sp.samp.now,
			stop: func() { sp.interrupt(); e.finishProfile(sp.ownProc, tag, sp.trace) }}, nil
	}
	e.noteOnce("c-cap", "Scenario c: our daemon runs `get -seed`, which has no peer-limit flags: it keeps at most 80 peers per torrent.")
	port := peertest.FreePort(tb)
	args := append([]string{"get", "-seed", "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-o", pf.dir}, extra...)
	p := startOwn(tb, 0, e.ours.bin, append(args, pf.torrent)...)
	if _, err := p.waitFor(" complete: ", 5*time.Minute); err != nil {
		return nil, err
	}
	return &seeder{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), usage: p.samp.now,
		stop: p.interrupt}, nil
}

func waitTorrentSeeding(api *apiClient, ih metainfo.Hash, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := api.torrent(ih)
		if err == nil && st.State == "seeding" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("torrent %s: state %q (%v) after %v", ih, st.State, err, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scenarioC: our daemon and python3-libtorrent each seed the same torrent
// to the same synthetic swarm of leechers; the swarm counts what arrives.
// Then the same over RC4 and over uTP, at fewer sizes.
func scenarioC(e *env, tb *scope) []*table {
	size := int64(gib)
	sizes, modeSizes := []int{50, 1000, 5000}, []int{50, 1000}
	window := 8 * time.Second
	if e.opt.Quick {
		size, sizes, modeSizes, window = 256*mib, []int{500}, []int{500}, 4*time.Second
	}
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	t := &table{title: fmt.Sprintf("c. Seed %d MiB to synthetic leechers (%.0f s window)", size>>20, window.Seconds()),
		cols: []string{"seeder", "leechers", "connected", "upload MB/s", "CPU s/GiB", "RSS MiB", "anon RSS MiB",
			"conns served", "KB/s per served conn (p50)", "runs ok"}}
	type who struct {
		name  string
		start func(n, run int) (*seeder, error)
	}
	// ours and lt are the two seeders of a mode: ours with extra flags,
	// libtorrent with o's.
	ours := func(suffix, tag string, extra ...string) who {
		return who{"gotorrentserver" + suffix, func(n, run int) (*seeder, error) {
			return e.oursSeeding(tb, pf, n+100, fmt.Sprintf("c-%s-%d-run%d", tag, n, run), extra...)
		}}
	}
	lt := func(suffix string, o ltOpts) who {
		return who{"python3-libtorrent" + suffix, func(n, _ int) (*seeder, error) {
			o.torrents, o.dir, o.connections = []string{pf.torrent}, pf.dir, n+100
			s := startLTSeederWith(tb, o)
			return &seeder{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port)),
				usage: s.samp.now, stop: s.Stop}, nil
		}}
	}
	type mode struct {
		id        string
		transport swarm.Transport
		sizes     []int
		seeders   []who
	}
	hasLT := peertest.Have("libtorrent")
	var modes []mode
	for _, m := range []struct {
		mode
		suffix, tag string
		extra       []string
		lt          ltOpts
	}{
		{mode: mode{id: modePlain, transport: swarm.TCP, sizes: sizes}, tag: "ours"},
		{mode: mode{id: modeRC4, transport: swarm.MSE, sizes: modeSizes}, suffix: " (RC4)", tag: "ours-rc4",
			extra: []string{"-encryption", "require"}, lt: ltOpts{encrypt: true}},
		{mode: mode{id: modeUTP, transport: swarm.UTP, sizes: modeSizes}, suffix: " (uTP)", tag: "ours-utp",
			lt: ltOpts{utpOnly: true, sockBuf: utpSocketBuffer}},
	} {
		if !e.opt.mode(m.id) {
			continue
		}
		m.seeders = []who{ours(m.suffix, m.tag, m.extra...)}
		if hasLT {
			m.seeders = append(m.seeders, lt(m.suffix, m.lt))
		}
		modes = append(modes, m.mode)
	}
	tor := []swarm.Torrent{{Meta: pf.mi, Payload: pf.p}}
	meds := map[string]map[int]series{} // seeder -> leechers -> its runs
	var short []string                  // rows whose swarm did not all connect
	for _, md := range modes {
		for _, n := range md.sizes {
			res := map[string]series{}
			ok := map[string]int{}
			for r := range e.opt.Runs {
				for _, w := range rotate(md.seeders, r) {
					m, err := seedRun(w.start, n, r, tor, window, md.transport)
					e.logf("  run %d %-25s %5d leechers: connected %5.0f  %7.1f MB/s  cpu %5.2f s/GiB  rss %5.0f MiB  (swarm cpu %.2f s/GiB, %.0f dials failed, %.0f closed by the seeder)  %s",
						r+1, w.name, n, m["connected"], m["mbps"], m["cpu"], m["rss"], m["swarmcpu"], m["dialerr"], m["closes"], errText(err))
					if err != nil {
						t.note("%s, %d leechers, run %d: %v", w.name, n, r+1, firstLine(err))
						continue
					}
					if res[w.name] == nil {
						res[w.name] = series{}
					}
					ok[w.name]++
					for k, v := range m {
						res[w.name].add(k, v)
					}
				}
			}
			for _, w := range md.seeders {
				s := res[w.name]
				if s == nil {
					t.add(w.name, fmt.Sprint(n), "–", "–", "–", "–", "–", "–", "–", fmt.Sprintf("0/%d", e.opt.Runs))
					continue
				}
				if meds[w.name] == nil {
					meds[w.name] = map[int]series{}
				}
				meds[w.name][n] = s
				if c := s.med("connected"); c < float64(n) {
					short = append(short, fmt.Sprintf("%s at %d: %.0f connected, %.0f open, %.0f dials failed, %.0f closed by the seeder",
						w.name, n, c, s.med("open"), s.med("dialerr"), s.med("closes")))
				}
				t.add(w.name, fmt.Sprint(n), f(s.med("connected"), 0), f(s.med("mbps"), 1), f(s.med("cpu"), 2),
					f(s.med("rss"), 0), f(s.med("anon"), 0), f(s.med("active"), 0), f(s.med("p50"), 0),
					fmt.Sprintf("%d/%d", ok[w.name], e.opt.Runs))
			}
		}
		if lo, hi := md.sizes[0], md.sizes[len(md.sizes)-1]; lo != hi {
			for _, w := range md.seeders {
				if r := meds[w.name]; r[lo] != nil && r[hi] != nil && r[lo].med("mbps") > 0 {
					t.note("%s at %d leechers keeps %.0f %% of its %d-leecher rate.", w.name, hi, 100*r[hi].med("mbps")/r[lo].med("mbps"), lo)
				}
			}
		}
	}
	t.note("Leechers: bench/swarm connections from 127.0.0.2..250, each interested at once and keeping 64 requests of 16 KiB outstanding whenever unchoked (no hash verification, to leave the CPU to the seeder). The window starts once the connection count has settled; upload MB/s counts requested blocks the swarm received in it; CPU is the seeder process's in the window.")
	t.note("Both seeders are allowed leechers + 100 connections (libtorrent: connections_limit) and keep their default upload slots (ours automatic over all torrents; libtorrent 8 plus optimistic, but here its loopback peers sit in its local peer class, which ignores unchoke slots).")
	t.note("connected: swarm connections past the handshake at the end of the window; conns served: connections that received any block in the window. RSS is VmRSS at the end of the window; anon RSS leaves out file-backed pages, which for libtorrent include the torrent's data mapped into memory (it reads through mmap).")
	if e.opt.mode(modeRC4) {
		t.note("(RC4) rows: ours runs with `-encryption require` (plaintext handshakes refused), libtorrent with lt_bench.py --encrypt (pe_forced both ways, allowed_enc_level rc4). Every leecher dials TCP and runs the MSE handshake offering RC4 only (netio.InitiateMSE, its BitTorrent handshake inside) in the dialing goroutine, 64 at once, before its connection joins the swarm's gnet loops, which then decrypt every byte received into a buffer of their own (one copy more than plaintext) and encrypt every request.")
	}
	if e.opt.mode(modeUTP) {
		t.note("(uTP) rows: every leecher dials uTP (netio/utp, plaintext) from a UDP socket of its own (libtorrent closes a second connection from the same address and port as a duplicate) with 4 MiB buffers, each read by a goroutine of its own; two netio/utp Mux loops drive the connections as gnet's loops do; ours runs its usual flags (uTP is accepted on the UDP socket it binds on the peer port's number, with 4 MiB buffers), libtorrent with lt_bench.py --utp-only --socket-buffers %d, the same buffers. These leechers are no TCP connection at all, so no row can fall back to TCP.", utpSocketBuffer)
	}
	if len(short) > 0 {
		t.note("Rows short of their leechers (medians; dials and closes count from the swarm's start, a failed dial is a connect refused or not answered in time (TCP 5 s, uTP 3 s of SYNs), or for RC4 an MSE handshake not done in 5 s; open counts established connections, past their BitTorrent handshake or not): %s.", strings.Join(short, "; "))
	}
	if e.opt.mode(modeRC4) || e.opt.mode(modeUTP) {
		var parts []string
		for _, md := range modes {
			for _, n := range md.sizes {
				for _, w := range md.seeders {
					if s := meds[w.name][n]; s != nil {
						parts = append(parts, fmt.Sprintf("%s at %d: %.2f", w.name, n, s.med("swarmcpu")))
					}
				}
			}
		}
		t.note("The leechers share the two cores with the seeder, and decrypting RC4 or running uTP costs them too: the benchmark process (mostly the swarm) used, in CPU s per GiB received: %s. Where seeder and leechers together fill both cores, a rate says as much about the swarm as about the seeder; CPU s/GiB is the seeder's alone.", strings.Join(parts, "; "))
	}
	for _, n := range modeSizes {
		if r, p := meds["gotorrentserver (RC4)"][n], meds["gotorrentserver"][n]; r != nil && p != nil {
			t.note("At %d leechers RC4 costs ours %.2f× the CPU of plaintext (%.2f ÷ %.2f CPU s/GiB) and moves %.0f %% of its plaintext rate.",
				n, r.med("cpu")/p.med("cpu"), r.med("cpu"), p.med("cpu"), 100*r.med("mbps")/p.med("mbps"))
		}
		if o, l := meds["gotorrentserver (uTP)"][n], meds["python3-libtorrent (uTP)"][n]; o != nil && l != nil {
			t.note("At %d leechers over uTP ours uploads %.1f MB/s, libtorrent %.1f MB/s: %.2f× libtorrent's rate.",
				n, o.med("mbps"), l.med("mbps"), o.med("mbps")/l.med("mbps"))
		}
	}
	return []*table{t}
}

// seedRun starts a seeder, lets n leechers connect, and measures one
// window.
func seedRun(start func(n, run int) (*seeder, error), n, run int, tor []swarm.Torrent, window time.Duration,
	tr swarm.Transport) (map[string]float64, error) {
	s, err := start(n, run)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	sw, err := swarm.Start(swarm.Config{Mode: swarm.Leech, Transport: tr, Torrents: tor, Peers: n, Target: s.addr,
		Duration: window + 2*time.Minute, Dialers: 64})
	if err != nil {
		return nil, err
	}
	defer sw.Stop()
	settle(sw, n)
	time.Sleep(time.Second)
	a, ua, selfA := sw.Stats(), s.usage(), selfCPU()
	time.Sleep(window)
	b, ub, selfB := sw.Stats(), s.usage(), selfCPU()
	w := swarm.Rates(a, b)
	if err := swarmErr(b); err != nil {
		return nil, err
	}
	if w.Bytes == 0 {
		return nil, fmt.Errorf("no block arrived in %v (%d connected)", window, b.Handshaken)
	}
	var served []float64
	for i, v := range b.PerConn {
		if d := v - a.PerConn[i]; d > 0 {
			served = append(served, float64(d)/1e3/w.Seconds)
		}
	}
	return map[string]float64{
		"connected": float64(b.Handshaken),
		"mbps":      w.MBps,
		"cpu":       (ub.CPU - ua.CPU).Seconds() / (float64(w.Bytes) / gib),
		"rss":       float64(ub.RSS) / mib,
		"anon":      float64(ub.Anon) / mib,
		"active":    float64(w.Active),
		"p50":       median(served),
		// For the log and notes: the benchmark process's CPU (mostly the
		// leechers') in the window, and since the swarm started, the dials
		// that failed and the connections the seeder closed.
		"swarmcpu": (selfB - selfA).Seconds() / (float64(w.Bytes) / gib),
		"dialerr":  float64(b.DialErrors),
		"closes":   float64(b.RemoteCloses),
		"open":     float64(b.Open),
	}, nil
}

// settle waits until the swarm's connections have settled: every one of
// n in, or no new peak for 2 s (a seeder that caps connections refuses
// some, which redial, and churn closes some, so the count wobbles), at most
// 20 s.
func settle(sw *swarm.Swarm, n int) {
	peak, since := int64(-1), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		h := sw.Stats().Handshaken
		if h >= int64(n) {
			return
		}
		if h > peak {
			peak, since = h, time.Now()
		} else if time.Since(since) > 2*time.Second {
			return
		}
	}
}

// swarmErr reports protocol errors the swarm saw: the peer under test sent
// something malformed (or the swarm misread it); either way the figures of
// that run are not to be trusted.
func swarmErr(st swarm.Stats) error {
	if st.ProtocolErrors > 0 || st.PiecesBad > 0 {
		return fmt.Errorf("swarm saw %d protocol errors, %d bad pieces (last: %s)", st.ProtocolErrors, st.PiecesBad, st.LastError)
	}
	return nil
}
