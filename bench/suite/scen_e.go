package suite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gotorrentserver/bench/swarm"
)

// hammer has workers issue requests back to back for d (or until stop is
// closed) and returns their latencies in ms; failed requests are counted.
func hammer(api *apiClient, workers int, d time.Duration, stop <-chan struct{}, path func(r *rand.Rand) string) (lat []float64, failed int64) {
	var mu sync.Mutex
	var bad atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []float64
			for time.Now().Before(deadline) && !closed(stop) {
				t0 := time.Now()
				code, err := api.discard(path(r))
				if err != nil || code != http.StatusOK {
					bad.Add(1)
					continue
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, bad.Load()
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// scenarioE: a daemon with 10,000 seeding torrents and no peers: start-up
// from its state folder, memory, API latency, and what hammering the API
// costs a transfer running beside it.
func scenarioE(e *env, tb *scope) []*table {
	n, latWindow, rateWindow := 10000, 5*time.Second, 8*time.Second
	bigSize := int64(256 * mib)
	if e.opt.Quick {
		n, latWindow, rateWindow, bigSize = 1000, 2*time.Second, 3*time.Second, 64*mib
	}
	const workers = 16
	const subscribers = 100
	if !e.ours.hasServe() {
		tb.Skip("SKIP (not built yet): scenario e needs `gotorrentserver serve`")
	}
	dl := filepath.Join(e.opt.WorkDir, "e-downloads")
	state := filepath.Join(e.opt.WorkDir, "e-state")
	t0 := time.Now()
	ts, err := makeSmallTorrents(filepath.Join(dl, "e"), "e", n, 4<<10, 16<<10)
	if err != nil {
		tb.Fatal(err)
	}
	big, err := makeSmallTorrents(filepath.Join(dl, "big"), "big", 1, bigSize, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	e.logf("  generated %d torrents in %.1f s", n+1, time.Since(t0).Seconds())

	// Load them once through the API; the daemon keeps them in its state.
	sp := e.startServe(tb, serveOpts{state: state, downloads: dl, tag: "e-load"})
	t0 = time.Now()
	if err := addAll(sp.api, "e", ts); err != nil {
		tb.Fatal(err)
	}
	if err := addAll(sp.api, "big", big); err != nil {
		tb.Fatal(err)
	}
	added := time.Since(t0)
	if err := sp.api.waitSeeding(n+1, time.Second, 10*time.Minute); err != nil {
		tb.Fatal(err)
	}
	loaded := time.Since(t0)
	sp.interrupt()
	e.logf("  added %d torrents over the API in %.1f s, all seeding after %.1f s", n+1, added.Seconds(), loaded.Seconds())

	t := &table{title: fmt.Sprintf("e. %d torrents loaded, seeding, no peers", n+1),
		cols: []string{"metric", "gotorrentserver serve"}}
	s := series{}
	ok := 0
	for r := range e.opt.Runs {
		m, err := manyRun(e, tb, state, dl, ts, big[0], n, workers, subscribers, latWindow, rateWindow, r)
		e.logf("  run %d: %v %s", r+1, m, errText(err))
		if err != nil {
			t.note("run %d: %v", r+1, firstLine(err))
			continue
		}
		ok++
		for k, v := range m {
			s.add(k, v)
		}
	}
	t.add("start-up to API answering, s", f(s.med("apiup"), 2))
	t.add(fmt.Sprintf("start-up to all %d seeding, s", n+1), f(s.med("allseed"), 2))
	t.add("torrents rechecked at start-up", f(s.med("rechecked"), 0))
	t.add("RSS after start-up, MiB", f(s.med("rss"), 0))
	t.add("idle CPU, % of a core", f(s.med("idlecpu"), 1))
	t.add(fmt.Sprintf("/torrentdata latency p50 / p99 ms (%d concurrent)", workers), f(s.med("td50"), 2)+" / "+f(s.med("td99"), 2))
	t.add("/torrentdata requests/s", f(s.med("tdrps"), 0))
	t.add(fmt.Sprintf("/alldata latency p50 / p99 ms (%d concurrent)", workers), f(s.med("ad50"), 0)+" / "+f(s.med("ad99"), 0))
	t.add("/alldata response size, MB", f(s.med("adsize"), 1))
	t.add("transfer rate alone (mean of the five alone phases), MB/s", f(s.med("rate0"), 1))
	t.add("daemon / benchmark process CPU beside it, % of a core", f(s.med("dcpu0"), 0)+" / "+f(s.med("gcpu0"), 0))
	t.add("dashboard beside the transfer: /alldata every 1 s, /torrentdata every 100 ms: p99 ms", f(s.med("dashad99"), 1)+" / "+f(s.med("dashtd99"), 2))
	t.add("drop in transfer rate with the dashboard polling, %", f(s.med("dropdash"), 1))
	for _, h := range []struct{ k, path string }{{"ad", "/alldata"}, {"td", "/torrentdata"}} {
		t.add(fmt.Sprintf("%s hammered (%d concurrent) beside the transfer: drop in transfer rate, %%", h.path, workers), f(s.med("drop"+h.k), 1))
		t.add(fmt.Sprintf("%s hammered: answers/s, p50 / p99 ms (paced)", h.path), f(s.med("rps"+h.k), 1)+", "+f(s.med("p50"+h.k), 0)+" / "+f(s.med("p99"+h.k), 0))
		t.add(fmt.Sprintf("%s hammered: daemon / benchmark process CPU, %% of a core", h.path), f(s.med("dcpu"+h.k), 0)+" / "+f(s.med("gcpu"+h.k), 0))
	}
	t.add(fmt.Sprintf("%d /events subscribers beside the transfer: drop in transfer rate, %%", subscribers), f(s.med("dropsse"), 1))
	t.add(fmt.Sprintf("%d /events subscribers: events/s delivered (all streams), daemon CPU %% of a core", subscribers), f(s.med("ssevps"), 0)+", "+f(s.med("dcpusse"), 0))
	t.add("runs ok", fmt.Sprintf("%d/%d", ok, e.opt.Runs))
	t.note("Set-up (not timed in the table): %d torrents of one 4 KiB file and one of %d MiB were added over the API (%.1f s) and seeded, then serve was stopped with SIGINT. Each run restarts serve on that state folder after a sync.", n, bigSize>>20, added.Seconds())
	t.note("Start-up times run from starting the process; all seeding is polled on /alldata every 100 ms. Latencies: %d clients with keep-alive issue requests back to back for %.0f s (/torrentdata for random loaded infohashes). The transfer is 8 bench/swarm leechers downloading the %d MiB torrent; its rate is measured over %.0f s windows: alone, while a dashboard polls, alone, while %d clients request /alldata back to back, alone, while they request /torrentdata, alone, while %d clients hold GET /events streams open and read every event, alone. Each drop is against the mean of the alone windows on either side. The API clients and the swarm run in the benchmark process on the same 2 cores as the daemon. While peers move at least 1 MiB/s the daemon paces API answers to its -api-rate budget (default 32 MiB/s, 256 KiB counted per request), so hammering clients wait for their answers rather than take CPU from the transfer.",
		workers, latWindow.Seconds(), bigSize>>20, rateWindow.Seconds(), workers, subscribers)
	return []*table{t}
}

func manyRun(e *env, tb *scope, state, dl string, ts []smallTorrent, big smallTorrent, n, workers, subscribers int, latWindow, rateWindow time.Duration, run int) (map[string]float64, error) {
	exec.Command("sync").Run()
	m := map[string]float64{"rechecked": 0}
	tag := fmt.Sprintf("e-run%d", run)
	sp := e.startServe(tb, serveOpts{state: state, downloads: dl, tag: tag})
	defer func() { sp.interrupt(); e.finishProfile(sp.ownProc, tag, sp.trace) }()
	m["apiup"] = time.Since(sp.start).Seconds()
	if err := sp.api.waitSeeding(n+1, 100*time.Millisecond, 10*time.Minute); err != nil {
		return nil, err
	}
	m["allseed"] = time.Since(sp.start).Seconds()
	_, body, err := sp.api.do("GET", "/alldata", nil)
	if err != nil {
		return nil, err
	}
	var all struct {
		Sessions []struct {
			Rechecks int `json:"rechecks"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, err
	}
	for _, x := range all.Sessions {
		if x.Rechecks > 0 {
			m["rechecked"]++
		}
	}
	m["adsize"] = float64(len(body)) / 1e6
	time.Sleep(2 * time.Second)
	u1 := sp.samp.now()
	time.Sleep(3 * time.Second)
	u2 := sp.samp.now()
	m["rss"] = float64(u2.RSS) / mib
	m["idlecpu"] = 100 * (u2.CPU - u1.CPU).Seconds() / 3

	anyTorrent := func(r *rand.Rand) string {
		return "/torrentdata?infohash=" + ts[r.IntN(len(ts))].mi.InfoHash.String()
	}
	lat, bad := hammer(sp.api, workers, latWindow, nil, anyTorrent)
	if bad > 0 || len(lat) == 0 {
		return nil, fmt.Errorf("/torrentdata: %d failed, %d answered", bad, len(lat))
	}
	m["td50"], m["td99"], m["tdrps"] = percentile(lat, 0.5), percentile(lat, 0.99), float64(len(lat))/latWindow.Seconds()
	lat, bad = hammer(sp.api, workers, latWindow, nil, func(*rand.Rand) string { return "/alldata" })
	if bad > 0 || len(lat) == 0 {
		return nil, fmt.Errorf("/alldata: %d failed, %d answered", bad, len(lat))
	}
	m["ad50"], m["ad99"] = percentile(lat, 0.5), percentile(lat, 0.99)

	sw, err := swarm.Start(swarm.Config{Mode: swarm.Leech, Torrents: []swarm.Torrent{{Meta: big.mi, Payload: big.p}},
		Peers: 8, Target: netip.MustParseAddrPort(sp.peerAddr), Duration: 9*(rateWindow+time.Second) + time.Minute})
	if err != nil {
		return nil, err
	}
	defer sw.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for sw.Stats().Down == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	// Each phase runs its API load for rateWindow beside the transfer and
	// measures the transfer's rate and both processes' CPU meanwhile.
	phase := func(load func(stop <-chan struct{})) (rate, dcpu, gcpu float64) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { load(stop); close(done) }()
		time.Sleep(500 * time.Millisecond)
		a, da, ga := sw.Stats(), sp.samp.now(), selfCPU()
		time.Sleep(rateWindow)
		b, db, gb := sw.Stats(), sp.samp.now(), selfCPU()
		close(stop)
		<-done
		pct := func(x, y time.Duration) float64 { return 100 * (y - x).Seconds() / rateWindow.Seconds() }
		return swarm.Rates(a, b).MBps, pct(da.CPU, db.CPU), pct(ga, gb)
	}
	var errs []error
	hammerPhase := func(name string, path func(r *rand.Rand) string) {
		var lat []float64
		var bad int64
		t0 := time.Now()
		m["rate"+name], m["dcpu"+name], m["gcpu"+name] = phase(func(stop <-chan struct{}) {
			lat, bad = hammer(sp.api, workers, time.Hour, stop, path)
		})
		if bad > 0 || len(lat) == 0 {
			errs = append(errs, fmt.Errorf("%s beside the transfer: %d failed, %d answered", name, bad, len(lat)))
			return
		}
		m["rps"+name] = float64(len(lat)) / time.Since(t0).Seconds()
		m["p50"+name], m["p99"+name] = percentile(lat, 0.5), percentile(lat, 0.99)
	}
	// The transfer runs alone between API phases; each phase's drop is
	// against the mean of the alone phases on either side, so the rate's
	// drift over the run is not read as a drop.
	alone := func(i int) {
		m[fmt.Sprintf("alone%d", i)], m[fmt.Sprintf("dcpualone%d", i)], m[fmt.Sprintf("gcpualone%d", i)] = phase(func(stop <-chan struct{}) { <-stop })
	}
	alone(0)
	// A dashboard: one client reading /alldata every second and a
	// torrent's details ten times a second.
	var dashAll, dashOne []float64
	m["ratedash"], _, _ = phase(func(stop <-chan struct{}) {
		dashAll, dashOne = dashboard(sp.api, stop, anyTorrent)
	})
	if len(dashAll) == 0 || len(dashOne) == 0 {
		errs = append(errs, fmt.Errorf("dashboard: %d and %d answers", len(dashAll), len(dashOne)))
	}
	m["dashad99"], m["dashtd99"] = percentile(dashAll, 0.99), percentile(dashOne, 0.99)
	alone(1)
	hammerPhase("ad", func(*rand.Rand) string { return "/alldata" })
	alone(2)
	hammerPhase("td", anyTorrent)
	alone(3)
	// Subscribers instead of pollers: streams held open, every event read.
	var evs, broken int64
	var evTime time.Duration
	m["ratesse"], m["dcpusse"], m["gcpusse"] = phase(func(stop <-chan struct{}) {
		evs, broken, evTime = eventStreams(sp.api, subscribers, stop)
	})
	if broken > 0 {
		errs = append(errs, fmt.Errorf("/events: %d of %d streams refused or broken", broken, subscribers))
	}
	m["ssevps"] = float64(evs) / evTime.Seconds()
	alone(4)
	if err := swarmErr(sw.Stats()); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if m["alone0"] <= 0 {
		return nil, fmt.Errorf("the transfer did not run (%d leechers connected)", sw.Stats().Handshaken)
	}
	for i, k := range []string{"dash", "ad", "td", "sse"} {
		base := (m[fmt.Sprintf("alone%d", i)] + m[fmt.Sprintf("alone%d", i+1)]) / 2
		m["drop"+k] = 100 * (1 - m["rate"+k]/base)
	}
	for _, k := range [][2]string{{"alone", "rate0"}, {"dcpualone", "dcpu0"}, {"gcpualone", "gcpu0"}} {
		sum := 0.0
		for i := range 5 {
			sum += m[fmt.Sprintf("%s%d", k[0], i)]
		}
		m[k[1]] = sum / 5
	}
	return m, nil
}

// eventStreams holds n GET /events streams open until stop, reading every
// event, and returns how many events they read in all, how many streams
// were refused or broke before stop, and for how long they were read.
func eventStreams(api *apiClient, n int, stop <-chan struct{}) (events, broken int64, elapsed time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	var count, bad atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, "GET", api.base+"/events", nil)
			if err != nil {
				bad.Add(1)
				return
			}
			req.Header.Set("Authorization", "Bearer "+api.token)
			res, err := hc.Do(req)
			if err != nil || res.StatusCode != http.StatusOK {
				bad.Add(1)
				if err == nil {
					res.Body.Close()
				}
				return
			}
			defer res.Body.Close()
			br := bufio.NewReaderSize(res.Body, 64<<10)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					if !closed(stop) {
						bad.Add(1)
					}
					return
				}
				if bytes.HasPrefix(line, []byte("event: ")) {
					count.Add(1)
				}
			}
		}()
	}
	<-stop
	elapsed = time.Since(t0)
	cancel()
	wg.Wait()
	return count.Load(), bad.Load(), elapsed
}

// dashboard polls like a web UI until stop: /alldata every second and one
// torrent's details every 100 ms, each on its own connection, and returns
// the latencies in ms.
func dashboard(api *apiClient, stop <-chan struct{}, one func(r *rand.Rand) string) (all, single []float64) {
	var wg sync.WaitGroup
	poll := func(every time.Duration, path func(r *rand.Rand) string, out *[]float64) {
		defer wg.Done()
		r := rand.New(rand.NewPCG(7, 7))
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			t0 := time.Now()
			if code, err := api.discard(path(r)); err == nil && code == http.StatusOK {
				*out = append(*out, float64(time.Since(t0).Microseconds())/1000)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}
	wg.Add(2)
	go poll(time.Second, func(*rand.Rand) string { return "/alldata" }, &all)
	go poll(100*time.Millisecond, one, &single)
	wg.Wait()
	return all, single
}

// selfCPU is this process's user+system CPU time: the swarm and the API
// clients share the machine with the daemon, and the table says how much.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
