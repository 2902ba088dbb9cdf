package suite

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/engine/wire"
)

// Scenarios g and h seed to WAN-like leechers: bench/swarm connections
// each capped at a rate, behind a round trip, some replaced every second.
// What a seeder is judged on is the share of the leechers' demand it meets
// and how evenly it spreads it, not its top speed.

// wanSwarm is the leecher swarm of one measurement.
type wanSwarm struct {
	tor   []swarm.Torrent // connection i takes part in tor[i%len]
	n     int
	rate  int64 // bytes/s per connection; 0: uncapped (the capacity runs)
	rtt   time.Duration
	churn float64 // connections replaced per second
	// pipeline is each leecher's requests outstanding; 0: the swarm's
	// default for rate and rtt.
	pipeline int
}

// uncapped is w without its cap, keeping the pipeline the cap gave it:
// the capacity runs. (The swarm's uncapped default of 64 requests on
// every one of 2,000 connections, without a round trip, queued so much at
// the seeder that it moved less than the capped swarm did.)
func (w wanSwarm) uncapped() wanSwarm {
	w.pipeline = swarm.DefaultPipeline(w.rate, w.rtt, wire.DefaultBlockLen)
	w.rate = 0
	return w
}

// minPresent is the least time a connection must be open in a window for
// its rate to enter Jain's index: a connection that just arrived has had
// no chance to be unchoked, and bytes over a sliver of time are noise.
const minPresent = time.Second

// wanResult is one window of one seeder under a wanSwarm.
type wanResult struct {
	secs      float64
	bytes     int64   // payload the leechers counted in the window
	connected int64   // handshaken at the end
	open      int64   // TCP connections open at the end (some may wait for the seeder's handshake)
	present   int     // connections open at some time in the window
	served    int     // ... that received any block in it
	demand    float64 // bytes: rate x seconds present, over the connections
	jain      float64 // over per-connection rates (bytes / seconds present), those present >= minPresent
	slotJain  float64 // over the swarm's positions (dialed slots): bytes over the window, 0 if never let in
	torBytes  []int64
	// torDemand is each torrent's leechers x cap x window, whether or not
	// they got in: a seeder that refuses or drops leechers does not lower
	// it (scenario h's demand).
	torDemand []float64
	cpu       time.Duration // the seeder's, in the window
	// cache is the seeder's read-cache lookups in the window, when it
	// reports them (ours).
	cache    cacheCounts
	hasCache bool
	rss, hwm int64 // the seeder's VmRSS at the end of the window, VmHWM
	// How long the seeder took to start (data checked), the swarm to
	// settle, the seeder to stop: for the log.
	startup, settle time.Duration
	times           string
	// For the log too: connections the seeder closed, dials that failed,
	// and the benchmark process's CPU (mostly the swarm's), in the window.
	closes, dialErrors, unexpected int64
	swarmCPU                       time.Duration
}

func (r wanResult) mbps() float64 { return float64(r.bytes) / 1e6 / r.secs }

// wanRun starts a seeder, lets the swarm connect and settle, and measures
// one window.
func wanRun(start func() (*seeder, error), w wanSwarm, window time.Duration) (r wanResult, err error) {
	t0 := time.Now()
	s, err := start()
	if err != nil {
		return wanResult{}, err
	}
	defer func() {
		t := time.Now()
		s.stop()
		r.times = fmt.Sprintf("start %.1f s, settle %.1f s, stop %.1f s; in the window the seeder closed %d, %d dials failed, %d blocks came unasked, the benchmark process used %.2f CPU s",
			r.startup.Seconds(), r.settle.Seconds(), time.Since(t).Seconds(), r.closes, r.dialErrors, r.unexpected, r.swarmCPU.Seconds())
	}()
	r.startup = time.Since(t0)
	sw, err := swarm.Start(swarm.Config{Mode: swarm.Leech, Torrents: w.tor, Peers: w.n, Target: s.addr,
		RateCap: w.rate, RTT: w.rtt, Churn: w.churn, Pipeline: w.pipeline, Duration: window + 2*time.Minute, Dialers: 64})
	if err != nil {
		return wanResult{}, err
	}
	defer sw.Stop()
	t1 := time.Now()
	settle(sw, w.n)
	r.settle = time.Since(t1)
	// Past the first burst: a seeder's limiter starts with tokens, and
	// what it sent at once the capped leechers count over the next second.
	time.Sleep(2 * time.Second)
	var cacheA cacheCounts
	if s.cache != nil {
		cacheA, err = s.cache()
		r.hasCache = err == nil
	}
	ua, ca, sa, selfA := s.usage(), sw.Conns(sw.Elapsed()), sw.Stats(), selfCPU()
	time.Sleep(window)
	cb, ub, st, selfB := sw.Conns(ca.At), s.usage(), sw.Stats(), selfCPU()
	if r.hasCache {
		cacheB, err := s.cache()
		r.cache, r.hasCache = cacheB.minus(cacheA), err == nil
	}
	r.closes, r.dialErrors, r.swarmCPU = st.RemoteCloses-sa.RemoteCloses, st.DialErrors-sa.DialErrors, selfB-selfA
	r.unexpected = st.Unexpected - sa.Unexpected
	if err := swarmErr(st); err != nil {
		return wanResult{}, err
	}
	r.secs, r.connected, r.open, r.cpu, r.rss, r.hwm = (cb.At - ca.At).Seconds(), st.Handshaken, st.Open, ub.CPU-ua.CPU, ub.RSS, ub.HWM
	r.torBytes, r.torDemand = make([]int64, len(w.tor)), make([]float64, len(w.tor))
	var rates []float64
	for _, c := range swarm.Shares(ca, cb) {
		r.present++
		r.bytes += c.Bytes
		if c.Bytes > 0 {
			r.served++
		}
		r.demand += float64(w.rate) * c.Seconds
		r.torBytes[c.Torrent] += c.Bytes
		if c.Seconds >= minPresent.Seconds() {
			rates = append(rates, float64(c.Bytes)/c.Seconds)
		}
	}
	r.jain = swarm.Jain(rates)
	slots := make([]float64, len(st.PerConn))
	for i, b := range st.PerConn {
		slots[i] = float64(b - sa.PerConn[i])
	}
	r.slotJain = swarm.Jain(slots)
	for i := range w.n {
		r.torDemand[i%len(w.tor)] += float64(w.rate) * r.secs
	}
	if r.bytes == 0 {
		return r, fmt.Errorf("no block arrived in %v (%d connected, %d dials, %d closed by the seeder)",
			window, st.Handshaken, st.Dials, st.RemoteCloses)
	}
	return r, nil
}

// torrentJain is Jain's index over the torrents' bytes relative to their
// demand (torDemand): 1 when every torrent gets the same share of what its
// leechers ask for.
func (r wanResult) torrentJain() float64 {
	var xs []float64
	for i, d := range r.torDemand {
		if d > 0 {
			xs = append(xs, float64(r.torBytes[i])/d)
		}
	}
	return swarm.Jain(xs)
}

// torrentsServed counts torrents whose leechers received anything.
func (r wanResult) torrentsServed() int {
	n := 0
	for _, b := range r.torBytes {
		if b > 0 {
			n++
		}
	}
	return n
}

// wanSeeder is one seeder of g and h: start runs it for n leechers with a
// global upload limit (bytes/s, 0: none).
type wanSeeder struct {
	name  string
	start func(n int, upLimit int64, run int) (*seeder, error)
}

// ltWANSeeders are python3-libtorrent with its defaults and with
// high_performance_seed, both seeing the synthetic leechers as remote
// peers, both allowed n + 100 connections, both starting from resume data
// (checked once, here).
func (e *env) ltWANSeeders(tb *scope, o ltOpts) []wanSeeder {
	o.resumeDir = filepath.Join(e.opt.WorkDir, "lt-resume")
	ltPrepare(tb, o)
	var out []wanSeeder
	for _, p := range []struct{ name, preset string }{
		{"python3-libtorrent", ""},
		{"python3-libtorrent high_performance_seed", "high_performance_seed"},
	} {
		out = append(out, wanSeeder{p.name, func(n int, upLimit int64, _ int) (*seeder, error) {
			oo := o
			oo.connections, oo.preset, oo.upLimit, oo.globalClass = n+100, p.preset, upLimit, true
			s := startLTSeederWith(tb, oo)
			return &seeder{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port)),
				usage: s.samp.now, stop: func() { s.Stop(); s.samp.close() }}, nil
		}})
	}
	return out
}

// oursServing starts `serve` with o on a fresh state folder, adds the
// torrents with add, and waits until count seed.
func (e *env) oursServing(tb *scope, downloads string, count int, o serveOpts, add func(*apiClient) error) (*seeder, error) {
	o.state, o.downloads = tb.TempDir(), downloads
	sp := e.startServe(tb, o)
	stop := func() { sp.interrupt(); e.finishProfile(sp.ownProc, o.tag, sp.trace) }
	if err := add(sp.api); err == nil {
		err = sp.api.waitSeeding(count, 50*time.Millisecond, 5*time.Minute)
	} else {
		stop()
		return nil, err
	}
	return &seeder{addr: netip.MustParseAddrPort(sp.peerAddr), usage: sp.samp.now, stop: stop, cache: sp.api.cache}, nil
}

// wanNotes say how the WAN swarm and the libtorrent seeders were set up.
func wanNotes(t *table, w wanSwarm, window time.Duration) {
	t.note("Leechers: bench/swarm connections from 127.0.0.2..250, each capped at %s and behind a %d ms round trip: a leecher counts a received block %d ms after it arrived and at most at its cap (a token bucket, 50 ms of burst), and only then decides its next request, which leaves %d ms later; it keeps enough requests outstanding for its cap over the round trip plus 0.5 s, so the cap, not its pipeline, limits it. %s",
		rateText(w.rate), w.rtt.Milliseconds(), w.rtt.Milliseconds()/2, w.rtt.Milliseconds()/2, churnText(w))
	t.note("Window: %.0f s, starting 2 s after the connections settled. received = payload the leechers counted in it; Jain = Jain's fairness index over per-connection rates (bytes / time connected in the window) of the connections connected at least %.0f s of it. CPU is the seeder process's in the window per GiB received; RSS is its VmRSS at the end of the window, peak its VmHWM.", window.Seconds(), minPresent.Seconds())
	t.note("python3-libtorrent seeds through bench/suite/lt_bench.py (DHT, LSD, UPnP, NAT-PMP, PEX and uTP off, plaintext) with connections_limit = leechers + 100, once with libtorrent's default settings and once from lt.high_performance_seed(). Its torrents are checked once per scenario and then added from resume data, as a fresh add would add them (queued, auto-managed), so each start skips the check. Both map every address to the global peer class (set_peer_class_filter): by default libtorrent puts loopback peers in its local class, exempt from unchoke slots and rate limits, and would treat the synthetic leechers as LAN peers.")
}

func rateText(r int64) string {
	if r%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB/s", r>>20)
	}
	return fmt.Sprintf("%d KiB/s", r>>10)
}

func churnText(w wanSwarm) string {
	if w.churn == 0 {
		return "No churn."
	}
	return fmt.Sprintf("With churn, %.0f connections a second are closed and redialed at once (a new peer id each time).", w.churn)
}
