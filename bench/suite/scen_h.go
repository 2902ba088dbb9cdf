package suite

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/netio/peertest"
)

// scenarioH: many small torrents seeded at once to WAN-like leechers
// spread evenly over them, without and with a global upload limit. A good
// seeder meets the demand (or fills the limit) and shares it evenly
// between the torrents.
func scenarioH(e *env, tb *scope) []*table {
	torrents, n, size, window := 200, 1000, int64(16*mib), 15*time.Second
	if e.opt.Quick {
		torrents, n, window = 40, 200, 6*time.Second
	}
	const rate, rtt = 1 << 20, 50 * time.Millisecond
	const limit = 100 << 20 // bytes/s
	if !e.ours.hasServe() {
		tb.Skip("SKIP (not built yet): scenario h needs `gotorrentserver serve`")
	}
	if !e.ours.has("serve", "max-up") {
		tb.Skip("SKIP (not built yet): scenario h needs serve's -max-up")
	}
	dl := filepath.Join(e.opt.WorkDir, "h-downloads")
	ts, err := makeSmallTorrents(filepath.Join(dl, "h"), "h", torrents, size, pieceLen)
	if err != nil {
		tb.Fatal(err)
	}
	tdir := filepath.Join(e.opt.WorkDir, "h-torrents")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	st := make([]swarm.Torrent, len(ts))
	for i, x := range ts {
		st[i] = swarm.Torrent{Meta: x.mi, Payload: x.p}
		if err := os.WriteFile(filepath.Join(tdir, fmt.Sprintf("h-%05d.torrent", i)), x.raw, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	t := &table{title: fmt.Sprintf("h. Seed %d torrents of %d MiB to %d leechers capped at 1 MiB/s, 50 ms RTT (%.0f s window)",
		torrents, size>>20, n, window.Seconds()),
		cols: []string{"seeder", "upload limit", "connected / open", "demand MB/s", "reference MB/s", "received MB/s", "share of reference",
			"Jain over torrents", "torrents served", "Jain over leechers", "CPU s/GiB", "RSS MiB", "peak RSS MiB", "runs ok"}}
	add := func(api *apiClient) error { return addAll(api, "h", ts) }
	ours := func(slots int) func(int, int64, int) (*seeder, error) {
		return func(_ int, upLimit int64, run int) (*seeder, error) {
			return e.oursServing(tb, dl, len(ts), serveOpts{unchokeSlots: slots, maxUpKiB: upLimit >> 10,
				tag: fmt.Sprintf("h-ours-slots%d-limit%d-run%d", slots, upLimit>>20, run)}, add)
		}
	}
	seeders := []wanSeeder{{"gotorrentserver serve", ours(0)}}
	if peertest.Have("libtorrent") {
		seeders = append(seeders, e.ltWANSeeders(tb, ltOpts{torrentDir: tdir, dir: filepath.Join(dl, "h")})...)
	}
	capName := fmt.Sprintf("capacity: gotorrentserver serve -unchoke-slots %d, leechers uncapped", n)
	capacity := wanSeeder{capName, ours(n)}
	limits := []int64{0, limit}
	res := map[string]series{}
	ok := map[string]int{}
	key := func(name string, l int64) string { return fmt.Sprintf("%s/%d", name, l) }
	w := wanSwarm{tor: st, n: n, rate: rate, rtt: rtt}
	var capUsed []float64
	for r := range e.opt.Runs {
		c, err := wanRun(func() (*seeder, error) { return capacity.start(n, 0, r) }, w.uncapped(), window/2)
		e.logf("  run %d capacity: %7.1f MB/s  cpu %5.2f s/GiB  %s (%s)", r+1, c.mbps(), c.cpu.Seconds()/(float64(c.bytes)/gib), errText(err), c.times)
		capBps := 0.0
		if err == nil {
			capBps = c.mbps() * 1e6
			addWAN(res, ok, key(capName, 0), c, 0, 0)
		} else {
			t.note("capacity, run %d: %v", r+1, firstLine(err))
		}
		type done struct {
			name string
			l    int64
			m    wanResult
		}
		var runs []done
		for _, l := range limits {
			for _, s := range rotate(seeders, r) {
				m, err := wanRun(func() (*seeder, error) { return s.start(n, l, r) }, w, window)
				e.logf("  run %d %-40s limit %3d MiB/s: got %6.1f MB/s  jain torrents %.3f (%d served)  leechers %.3f  cpu %5.2f s/GiB  %s (%s)",
					r+1, s.name, l>>20, m.mbps(), m.torrentJain(), m.torrentsServed(),
					m.slotJain, m.cpu.Seconds()/(float64(m.bytes)/gib), errText(err), m.times)
				if err != nil {
					t.note("%s, limit %s, run %d: %v", s.name, limitText(l), r+1, firstLine(err))
					continue
				}
				runs = append(runs, done{s.name, l, m})
				if l == 0 {
					capBps = max(capBps, m.mbps()*1e6)
				}
			}
		}
		if capBps == 0 {
			capBps = math.Inf(1) // nothing measured: shares of the demand alone
		}
		capUsed = append(capUsed, capBps/1e6)
		for _, d := range runs {
			demand := float64(n*rate) * d.m.secs
			ref := min(demand, capBps*d.m.secs)
			if d.l > 0 {
				ref = min(ref, float64(d.l)*d.m.secs)
			}
			e.logf("  run %d %-40s limit %3d MiB/s: share of reference %5.1f %% (demand %.1f MB/s, capacity %.1f MB/s)",
				r+1, d.name, d.l>>20, 100*float64(d.m.bytes)/ref, demand/1e6/d.m.secs, capBps/1e6)
			addWAN(res, ok, key(d.name, d.l), d.m, ref, 0)
			res[key(d.name, d.l)].add("ref", ref/1e6/d.m.secs)
			res[key(d.name, d.l)].add("nominal", demand/1e6/d.m.secs)
		}
	}
	row := func(name string, l int64) []string {
		s := res[key(name, l)]
		if s == nil {
			s = series{}
		}
		return []string{name, limitText(l), f(s.med("connected"), 0) + " / " + f(s.med("open"), 0), f(s.med("nominal"), 1), f(s.med("ref"), 1),
			f(s.med("mbps"), 1), pct(s.med("share")), f(s.med("tjain"), 3), f(s.med("tserved"), 0) + " / " + fmt.Sprint(torrents),
			f(s.med("sjain"), 3), f(s.med("cpu"), 2), f(s.med("rss"), 0), f(s.med("hwm"), 0),
			fmt.Sprintf("%d/%d", ok[key(name, l)], e.opt.Runs)}
	}
	for _, l := range limits {
		for _, s := range seeders {
			t.add(row(s.name, l)...)
		}
	}
	capRow := row(capName, 0)
	capRow[3] = "–" // demand: uncapped leechers ask for everything
	t.add(capRow...)
	t.note("Leechers are spread evenly: connection i takes part in torrent i mod %d (%d per torrent). Here demand = leechers x cap (a torrent's: its leechers x cap), whether or not the seeder let them in: a seeder that refuses or drops leechers does not lower its demand. reference = min(demand, capacity, upload limit); capacity = the most this machine moved to the swarm in the same run: the last row (window %.0f s; the same swarm, same RTT and requests outstanding, but uncapped, against our seeder with -unchoke-slots %d), or a seeder's received rate without a limit if higher; median %s MB/s. share of reference = received / reference. Jain over torrents: Jain's index over the torrents' received bytes / their demand (a torrent nobody received from counts as 0). Jain over leechers: over each leecher's bytes in the window (one never let in counts as 0).", torrents, n/torrents, window.Seconds()/2, n, f(median(capUsed), 1))
	wanNotes(t, w, window)
	t.note("Our seeder runs `serve` with its defaults (automatic upload slots, -unchoke-slots 0; %d leechers per torrent is within its connection limits), the torrents added over the API; the limit is -max-up %d (KiB/s). libtorrent's limit is upload_rate_limit = %d bytes/s. Each torrent is %d MiB in %d KiB pieces; ours checks them at each start (a fresh state folder), libtorrent once per scenario (see below).",
		n/torrents, limit>>10, limit, size>>20, pieceLen>>10)
	t.note("libtorrent's default settings queue seeding torrents (active_seeds 5, counting only torrents that move data; a queued torrent disconnects its peers); high_performance_seed raises that to 2,000.")
	return []*table{t}
}

func limitText(l int64) string {
	if l == 0 {
		return "none"
	}
	return rateText(l)
}
