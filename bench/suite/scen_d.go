package suite

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/metainfo"
)

// smallTorrent is one of many small generated torrents with its data
// written under a download root.
type smallTorrent struct {
	raw []byte
	mi  *metainfo.MetaInfo
	p   swarm.Payload
}

// makeSmallTorrents writes count payloads of size bytes as dir/<prefix>-N.bin
// and returns their torrents (pieceLen pieces), on all cores.
func makeSmallTorrents(dir, prefix string, count int, size, pieceLen int64) ([]smallTorrent, error) {
	out := make([]smallTorrent, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("%s-%05d.bin", prefix, i)
			p := swarm.Payload{Seed: uint64(i)<<20 | uint64(size), Size: size}
			raw, mi, err := swarm.MakeTorrent(p, name, pieceLen)
			if err == nil {
				err = swarm.WritePayload(p, filepath.Join(dir, name))
			}
			out[i], errs[i] = smallTorrent{raw: raw, mi: mi, p: p}, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addAll adds every torrent over the API, its data in the download root's
// folder sub, with a few requests in flight.
func addAll(api *apiClient, sub string, ts []smallTorrent) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := api.addTorrent(sub, ts[i].raw); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ts {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// scenarioD: 10,000 connections that complete the handshake and then stay
// idle, spread over 100 seeding torrents of one daemon.
func scenarioD(e *env, tb *scope) []*table {
	conns, torrents, window := 10000, 100, 10*time.Second
	if e.opt.Quick {
		conns, torrents, window = 2000, 20, 4*time.Second
	}
	if !e.ours.hasServe() {
		tb.Skip("SKIP (not built yet): scenario d needs `gotorrentserver serve`")
	}
	dl := filepath.Join(e.opt.WorkDir, "d-downloads")
	ts, err := makeSmallTorrents(filepath.Join(dl, "d"), "d", torrents, 1<<20, 64<<10)
	if err != nil {
		tb.Fatal(err)
	}
	st := make([]swarm.Torrent, len(ts))
	for i, x := range ts {
		st[i] = swarm.Torrent{Meta: x.mi, Payload: x.p}
	}
	t := &table{title: fmt.Sprintf("d. %d idle handshaken connections over %d seeding torrents", conns, torrents),
		cols: []string{"daemon", "connected", "connect s", "RSS before MiB", "RSS after MiB", "RSS per connection KiB",
			"idle CPU % of a core", "runs ok"}}
	s := series{}
	ok := 0
	for r := range e.opt.Runs {
		m, err := idleRun(e, tb, dl, ts, st, conns, window, r)
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
	t.add("gotorrentserver serve", f(s.med("connected"), 0), f(s.med("connect"), 1), f(s.med("before"), 0),
		f(s.med("after"), 0), f(s.med("perconn"), 1), f(s.med("cpu"), 1), fmt.Sprintf("%d/%d", ok, e.opt.Runs))
	t.note("Each run starts serve on a fresh state folder (-max-peers %d, -max-peers-per-torrent %d), adds the torrents over the API and waits until all seed; RSS before is then read, the swarm (bench/swarm, idle mode: handshake, then only keep-alives) opens its connections from 127.0.0.2..250, and after 3 s of rest RSS after and %.0f s of idle CPU are read. RSS per connection = (after - before) / connected.", conns+1000, conns/torrents*2+100, window.Seconds())
	return []*table{t}
}

func idleRun(e *env, tb *scope, dl string, ts []smallTorrent, st []swarm.Torrent, conns int, window time.Duration, run int) (map[string]float64, error) {
	sp := e.startServe(tb, serveOpts{state: tb.TempDir(), downloads: dl, maxPeers: conns + 1000,
		perTorrent: conns/len(ts)*2 + 100, tag: fmt.Sprintf("d-run%d", run)})
	defer func() { sp.interrupt(); e.finishProfile(sp.ownProc, fmt.Sprintf("d-run%d", run), sp.trace) }()
	if err := addAll(sp.api, "d", ts); err != nil {
		return nil, err
	}
	if err := sp.api.waitSeeding(len(ts), 100*time.Millisecond, 2*time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	before := sp.samp.now()
	start := time.Now()
	sw, err := swarm.Start(swarm.Config{Mode: swarm.Idle, Torrents: st, Peers: conns, Dialers: 64,
		Target: netip.MustParseAddrPort(sp.peerAddr), Duration: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	defer sw.Stop()
	last, since := int64(-1), time.Now()
	var connect time.Duration
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		h := sw.Stats().Handshaken
		if h >= int64(conns) {
			connect = time.Since(start)
			break
		}
		if h != last {
			last, since = h, time.Now()
		} else if time.Since(since) > 5*time.Second || time.Now().After(deadline) {
			connect = since.Sub(start)
			break
		}
	}
	time.Sleep(3 * time.Second)
	u1 := sp.samp.now()
	time.Sleep(window)
	u2 := sp.samp.now()
	s := sw.Stats()
	if err := swarmErr(s); err != nil {
		return nil, err
	}
	if s.Handshaken == 0 {
		return nil, fmt.Errorf("no connection completed the handshake (%d dials, %d errors, %d closed by the daemon)",
			s.Dials, s.DialErrors, s.RemoteCloses)
	}
	return map[string]float64{
		"connected": float64(s.Handshaken),
		"connect":   connect.Seconds(),
		"before":    float64(before.RSS) / mib,
		"after":     float64(u2.RSS) / mib,
		"perconn":   float64(u2.RSS-before.RSS) / 1024 / float64(s.Handshaken),
		"cpu":       100 * (u2.CPU - u1.CPU).Seconds() / window.Seconds(),
	}, nil
}
