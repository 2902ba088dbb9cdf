package suite

import (
	"fmt"
	"math"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/netio/peertest"
)

// scenarioG: one torrent seeded to WAN-like leechers capped at 1 MiB/s
// each behind a 50 ms round trip: 100 of them, and 2,000 with 2 % replaced
// every second. A good seeder meets their demand, up to what the machine
// can move, and spreads it evenly.
func scenarioG(e *env, tb *scope) []*table {
	size := int64(gib)
	type part struct {
		n     int
		churn float64
	}
	parts := []part{{100, 0}, {2000, 40}}
	window := 20 * time.Second
	if e.opt.Quick {
		size, parts, window = 256*mib, []part{{100, 0}, {500, 10}}, 8*time.Second
	}
	const rate, rtt = 1 << 20, 50 * time.Millisecond
	if !e.ours.hasServe() {
		tb.Skip("SKIP (not built yet): scenario g needs `gotorrentserver serve`")
	}
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	tor := []swarm.Torrent{{Meta: pf.mi, Payload: pf.p}}
	big := parts[len(parts)-1]
	t := &table{title: fmt.Sprintf("g. Seed %d MiB to leechers capped at 1 MiB/s, 50 ms RTT (%.0f s window)", size>>20, window.Seconds()),
		cols: []string{"seeder", "leechers", "churn /s", "connected / open", "demand MB/s", "received MB/s", "share of demand",
			"share of swarm demand", "Jain", "Jain (leechers)", "served / present", "CPU s/GiB", "cache hits", "blocks read alone", "RSS MiB", "peak RSS MiB", "runs ok"}}
	add := func(api *apiClient) error { return api.addTorrent("", pf.raw) }
	ours := func(slots int) func(n int, _ int64, run int) (*seeder, error) {
		return func(n int, _ int64, run int) (*seeder, error) {
			return e.oursServing(tb, pf.dir, 1, serveOpts{perTorrent: n + 100, unchokeSlots: slots,
				tag: fmt.Sprintf("g-ours-%d-slots%d-run%d", n, slots, run)}, add)
		}
	}
	seeders := []wanSeeder{{"gotorrentserver serve", ours(0)}}
	if peertest.Have("libtorrent") {
		seeders = append(seeders, e.ltWANSeeders(tb, ltOpts{torrents: []string{pf.torrent}, dir: pf.dir})...)
	}
	// The machine's capacity: the biggest swarm, uncapped, against our
	// seeder unchoking every leecher, or what a seeder moved to that
	// swarm in the same run if that was more.
	capName := fmt.Sprintf("capacity: gotorrentserver serve -unchoke-slots %d, leechers uncapped", big.n)
	capacity := &wanSeeder{capName, ours(big.n)}
	res := map[string]series{}
	ok := map[string]int{}
	key := func(name string, p part) string { return fmt.Sprintf("%s/%d", name, p.n) }
	var capUsed []float64
	for r := range e.opt.Runs {
		c, err := wanRun(func() (*seeder, error) { return capacity.start(big.n, 0, r) },
			wanSwarm{tor: tor, n: big.n, rate: rate, rtt: rtt, churn: big.churn}.uncapped(), window/2)
		e.logf("  run %d capacity %5d leechers: %7.1f MB/s  cpu %5.2f s/GiB  %s (%s)", r+1, big.n, c.mbps(),
			c.cpu.Seconds()/(float64(c.bytes)/gib), errText(err), c.times)
		capBps := 0.0
		if err == nil {
			capBps = c.mbps() * 1e6
			addWAN(res, ok, key(capName, big), c, 0, 0)
		} else {
			t.note("capacity, run %d: %v", r+1, firstLine(err))
		}
		type done struct {
			name string
			p    part
			m    wanResult
		}
		var runs []done
		for _, p := range parts {
			w := wanSwarm{tor: tor, n: p.n, rate: rate, rtt: rtt, churn: p.churn}
			for _, s := range rotate(seeders, r) {
				m, err := wanRun(func() (*seeder, error) { return s.start(p.n, 0, r) }, w, window)
				e.logf("  run %d %-40s %5d leechers: demand %6.1f MB/s  got %6.1f MB/s  jain %.3f (leechers %.3f)  served %d/%d  cpu %5.2f s/GiB  %s (%s)",
					r+1, s.name, p.n, m.demand/1e6/m.secs, m.mbps(), m.jain, m.slotJain, m.served, m.present,
					m.cpu.Seconds()/(float64(m.bytes)/gib), errText(err), m.times)
				if err != nil {
					t.note("%s, %d leechers, run %d: %v", s.name, p.n, r+1, firstLine(err))
					continue
				}
				runs = append(runs, done{s.name, p, m})
				if p == big {
					capBps = max(capBps, m.mbps()*1e6)
				}
			}
		}
		if capBps == 0 {
			capBps = math.Inf(1) // nothing measured: shares of the demand alone
		}
		capUsed = append(capUsed, capBps/1e6)
		for _, d := range runs {
			ref := min(d.m.demand, capBps*d.m.secs)
			swarmRef := min(float64(d.p.n)*rate*d.m.secs, capBps*d.m.secs)
			e.logf("  run %d %-40s %5d leechers: share of demand %5.1f %%, of swarm demand %5.1f %% (capacity %.1f MB/s)",
				r+1, d.name, d.p.n, 100*float64(d.m.bytes)/ref, 100*float64(d.m.bytes)/swarmRef, capBps/1e6)
			addWAN(res, ok, key(d.name, d.p), d.m, ref, swarmRef)
		}
	}
	for _, p := range parts {
		for _, s := range seeders {
			t.add(wanRow(res[key(s.name, p)], s.name, p.n, p.churn, ok[key(s.name, p)], e.opt.Runs)...)
		}
	}
	t.add(wanRow(res[key(capName, big)], capName, big.n, big.churn, ok[key(capName, big)], e.opt.Runs)...)
	t.note("demand = sum over connections of cap x time connected in the window; swarm demand = leechers x cap (whether or not the seeder let them in). share of demand = received / min(demand, capacity x window), share of swarm demand likewise. capacity = the most this machine moved to the biggest swarm in the same run: the last row (window %.0f s; the same swarm with the same RTT, churn and requests outstanding, but uncapped, against our seeder unchoking every leecher), or a seeder's received rate at that size if higher; median %s MB/s. Smaller swarms' demand is far below it.",
		window.Seconds()/2, f(median(capUsed), 1))
	wanNotes(t, wanSwarm{rate: rate, rtt: rtt, churn: big.churn}, window)
	t.note("Jain (leechers): Jain's index over each leecher's rate over the whole window (a leecher is a position in the swarm, kept across its reconnects; one never let in counts as 0).")
	t.note("Our seeder runs `serve` with the torrent added over the API and its defaults (automatic upload slots, -unchoke-slots 0) except -max-peers-per-torrent, raised to leechers + 100 as in scenario c (the default of 80 would refuse most of the swarm).")
	t.note("cache hits: the share of our seeder's read-cache lookups in the window that found their piece cached (or being read); blocks read alone: the share read as the 16 KiB block alone because the cache was thrashing (recent whole-piece fills served under a third of their blocks). From /alldata's upload object before and after the window; libtorrent reads through mmap and reports none.")
	t.note("connected / open: leecher connections past the handshake / TCP connections open, at the end of the window (a seeder slow to accept leaves connections waiting for its handshake; they are not in demand). served / present: connections that received any block in the window / connections connected at some time in it (with churn, more than the swarm's size).")
	return []*table{t}
}

// addWAN records one window's figures; ref and swarmRef are what the
// shares are taken of (0: none, the capacity rows).
func addWAN(res map[string]series, ok map[string]int, k string, m wanResult, ref, swarmRef float64) {
	s := res[k]
	if s == nil {
		s = series{}
		res[k] = s
	}
	ok[k]++
	s.add("connected", float64(m.connected))
	s.add("open", float64(m.open))
	s.add("demand", m.demand/1e6/m.secs)
	s.add("mbps", m.mbps())
	if ref > 0 {
		s.add("share", 100*float64(m.bytes)/ref)
	}
	if swarmRef > 0 {
		s.add("sshare", 100*float64(m.bytes)/swarmRef)
	}
	s.add("jain", m.jain)
	s.add("sjain", m.slotJain)
	s.add("tjain", m.torrentJain())
	s.add("tserved", float64(m.torrentsServed()))
	s.add("served", float64(m.served))
	s.add("present", float64(m.present))
	s.add("cpu", m.cpu.Seconds()/(float64(m.bytes)/gib))
	s.add("rss", float64(m.rss)/mib)
	s.add("hwm", float64(m.hwm)/mib)
	if n := m.cache.Hits + m.cache.Misses; m.hasCache && n > 0 {
		s.add("hit", 100*float64(m.cache.Hits)/float64(n))
		s.add("alone", 100*float64(m.cache.Blocks)/float64(n))
	}
}

// wanRow is a g row: medians over the runs that succeeded.
func wanRow(s series, name string, n int, churn float64, ok, runs int) []string {
	if s == nil {
		s = series{}
	}
	demand := f(s.med("demand"), 1)
	if len(s["share"]) == 0 {
		demand = "–"
	}
	return []string{name, fmt.Sprint(n), f(churn, 0), f(s.med("connected"), 0) + " / " + f(s.med("open"), 0), demand,
		f(s.med("mbps"), 1), pct(s.med("share")), pct(s.med("sshare")), f(s.med("jain"), 3), f(s.med("sjain"), 3),
		f(s.med("served"), 0) + " / " + f(s.med("present"), 0), f(s.med("cpu"), 2),
		pct(s.med("hit")), pct(s.med("alone")), f(s.med("rss"), 0), f(s.med("hwm"), 0), fmt.Sprintf("%d/%d", ok, runs)}
}

// pct formats a percentage; "–" for NaN.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return f(v, 1) + " %"
}
