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
			"Jain", "served / present", "CPU s/GiB", "RSS MiB", "peak RSS MiB", "runs ok"}}
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
	// seeder unchoking every leecher.
	capName := fmt.Sprintf("capacity: gotorrentserver serve -unchoke-slots %d, leechers uncapped", big.n)
	capacity := &wanSeeder{capName, ours(big.n)}
	res := map[string]series{}
	ok := map[string]int{}
	key := func(name string, p part) string { return fmt.Sprintf("%s/%d", name, p.n) }
	for r := range e.opt.Runs {
		c, err := wanRun(func() (*seeder, error) { return capacity.start(big.n, 0, r) },
			wanSwarm{tor: tor, n: big.n, rate: rate, rtt: rtt, churn: big.churn}.uncapped(), window/2)
		e.logf("  run %d capacity %5d leechers: %7.1f MB/s  cpu %5.2f s/GiB  %s (%s)", r+1, big.n, c.mbps(),
			c.cpu.Seconds()/(float64(c.bytes)/gib), errText(err), c.times)
		capBps := math.Inf(1) // without a capacity, the share is of the demand
		if err == nil {
			capBps = c.mbps() * 1e6
			addWAN(res, ok, key(capName, big), c, 0)
		} else {
			t.note("capacity, run %d: %v", r+1, firstLine(err))
		}
		for _, p := range parts {
			w := wanSwarm{tor: tor, n: p.n, rate: rate, rtt: rtt, churn: p.churn}
			for _, s := range rotate(seeders, r) {
				m, err := wanRun(func() (*seeder, error) { return s.start(p.n, 0, r) }, w, window)
				ref := min(m.demand, capBps*m.secs)
				e.logf("  run %d %-40s %5d leechers: demand %6.1f MB/s  got %6.1f MB/s  share %5.1f %%  jain %.3f  served %d/%d  cpu %5.2f s/GiB  %s (%s)",
					r+1, s.name, p.n, m.demand/1e6/m.secs, m.mbps(), 100*float64(m.bytes)/ref, m.jain, m.served, m.present,
					m.cpu.Seconds()/(float64(m.bytes)/gib), errText(err), m.times)
				if err != nil {
					t.note("%s, %d leechers, run %d: %v", s.name, p.n, r+1, firstLine(err))
					continue
				}
				addWAN(res, ok, key(s.name, p), m, ref)
			}
		}
	}
	for _, p := range parts {
		for _, s := range seeders {
			t.add(wanRow(res[key(s.name, p)], s.name, p.n, p.churn, ok[key(s.name, p)], e.opt.Runs)...)
		}
	}
	t.add(wanRow(res[key(capName, big)], capName, big.n, big.churn, ok[key(capName, big)], e.opt.Runs)...)
	t.note("demand = sum over connections of cap x time connected in the window. share of demand = received / min(demand, capacity x window), where capacity is the last row, measured in the same run (window %.0f s): the biggest swarm, same RTT, churn and requests outstanding, but uncapped, against our seeder unchoking every leecher; smaller swarms' demand is far below it. A share above 100 %% means a seeder moved more than that.", window.Seconds()/2)
	wanNotes(t, wanSwarm{rate: rate, rtt: rtt, churn: big.churn}, window)
	t.note("Our seeder runs `serve` with the torrent added over the API and its defaults (-unchoke-slots 4 per torrent) except -max-peers-per-torrent, raised to leechers + 100 as in scenario c (the default of 80 would refuse most of the swarm).")
	t.note("connected / open: leecher connections past the handshake / TCP connections open, at the end of the window (a seeder slow to accept leaves connections waiting for its handshake; they are not in demand). served / present: connections that received any block in the window / connections connected at some time in it (with churn, more than the swarm's size).")
	return []*table{t}
}

// addWAN records one window's figures; ref is what the share is taken of
// (0: none, the capacity rows).
func addWAN(res map[string]series, ok map[string]int, k string, m wanResult, ref float64) {
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
	s.add("jain", m.jain)
	s.add("tjain", m.torrentJain())
	s.add("tserved", float64(m.torrentsServed()))
	s.add("served", float64(m.served))
	s.add("present", float64(m.present))
	s.add("cpu", m.cpu.Seconds()/(float64(m.bytes)/gib))
	s.add("rss", float64(m.rss)/mib)
	s.add("hwm", float64(m.hwm)/mib)
}

// wanRow is a g row: medians over the runs that succeeded.
func wanRow(s series, name string, n int, churn float64, ok, runs int) []string {
	if s == nil {
		s = series{}
	}
	share := "–"
	if v := s.med("share"); !math.IsNaN(v) {
		share = f(v, 1) + " %"
	}
	demand := f(s.med("demand"), 1)
	if len(s["share"]) == 0 {
		demand = "–"
	}
	return []string{name, fmt.Sprint(n), f(churn, 0), f(s.med("connected"), 0) + " / " + f(s.med("open"), 0), demand, f(s.med("mbps"), 1), share,
		f(s.med("jain"), 3), f(s.med("served"), 0) + " / " + f(s.med("present"), 0), f(s.med("cpu"), 2),
		f(s.med("rss"), 0), f(s.med("hwm"), 0), fmt.Sprintf("%d/%d", ok, runs)}
}
