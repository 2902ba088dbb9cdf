package suite

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/netio/peertest"
)

// scenarioI: the client downloads from 50 WAN-like synthetic seeders, each
// sending at most 2 MiB/s and answering a request 100 ms after it arrived.
// The supply is fixed (100 MiB/s); a good downloader keeps enough requests
// outstanding on every seeder to take all of it.
func scenarioI(e *env, tb *scope) []*table {
	size := int64(gib)
	if e.opt.Quick {
		size = 256 * mib
	}
	const seeders, rate, rtt = 50, 2 << 20, 100 * time.Millisecond
	const supply = seeders * rate // bytes/s
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	timeout := 5 * time.Minute
	tor := []swarm.Torrent{{Meta: pf.mi, Payload: pf.p}}
	t := &table{title: fmt.Sprintf("i. Download %d MiB from %d seeders capped at 2 MiB/s, 100 ms RTT (supply %.1f MB/s)",
		size>>20, seeders, supply/1e6),
		cols: []string{"client", "transfer s", "share of supply", "wall s", "CPU s/GiB", "peak RSS MiB", "seeders connected (peak)", "runs ok"}}
	startSwarm := func(port int) (*swarm.Swarm, error) {
		return swarm.Start(swarm.Config{Mode: swarm.Seed, Torrents: tor, Peers: seeders, Duration: timeout,
			RateCap: rate, RTT: rtt, Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))})
	}
	clients := []dlClient{{"gotorrentserver get", func(out string, run int) measured {
		tag := fmt.Sprintf("i-ours-run%d", run)
		port := peertest.FreePort(tb)
		pa, trace := e.profileArgs("get", tag)
		args := append([]string{"get", "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-o", out}, pa...)
		p := startOwn(tb, trace, e.ours.bin, append(args, pf.torrent)...)
		if err := waitListen(port, 10*time.Second); err != nil {
			return measured{err: err}
		}
		sw, err := startSwarm(port)
		if err != nil {
			return measured{err: err}
		}
		defer sw.Stop()
		peak := watchPeak(sw)
		m := e.oursDownload(p, tag, trace, timeout)
		m.peers = peak()
		return transferTime(m, p.start, sw)
	}}}
	if peertest.Have("libtorrent") {
		clients = append(clients, dlClient{"python3-libtorrent", func(out string, _ int) measured {
			start := time.Now()
			p := startLT(tb, pf.torrent, out, 0)
			defer p.Stop()
			sw, err := startSwarm(p.Port)
			if err != nil {
				return measured{err: err}
			}
			defer sw.Stop()
			peak := watchPeak(sw)
			m := watchPeer(start, []string{p.script}, func() error { _, err := p.WaitLine("SEEDING", timeout); return err })
			m.peers = peak()
			return transferTime(m, start, sw)
		}})
	}
	res := map[string]series{}
	ok := map[string]int{}
	out := filepath.Join(e.opt.WorkDir, "out")
	for r := range e.opt.Runs {
		for _, c := range rotate(clients, r) {
			m := downloadOnce(tb, c, pf, out, r)
			share := float64(m.bytes) / m.xfer.Seconds() / supply
			e.logf("  run %d %-22s transfer %6.2fs  share %5.1f %%  wall %6.2fs  cpu %5.2fs  peak %5.0f MiB  %v", r+1, c.name,
				m.xfer.Seconds(), 100*share, m.wall.Seconds(), m.cpu.Seconds(), float64(m.hwm)/mib, errText(m.err))
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
			s.add("xfer", m.xfer.Seconds())
			s.add("share", 100*share)
			s.add("wall", m.wall.Seconds())
			s.add("cpu", m.cpu.Seconds()/(float64(m.bytes)/gib))
			s.add("rss", float64(m.hwm)/mib)
			s.add("peers", float64(m.peers))
		}
	}
	os.RemoveAll(out)
	for _, c := range clients {
		s := res[c.name]
		if s == nil {
			s = series{}
		}
		t.add(c.name, f(s.med("xfer"), 2), f(s.med("share"), 1)+" %", f(s.med("wall"), 2), f(s.med("cpu"), 2),
			f(s.med("rss"), 0), f(s.med("peers"), 0), fmt.Sprintf("%d/%d", ok[c.name], e.opt.Runs))
	}
	t.note("The synthetic seeders (bench/swarm, %d connections from 127.0.0.2..51 in the benchmark process) dial the client once it listens, send a full bitfield, unchoke on interest and answer each request %d ms after it arrived, at most %s per connection (a token bucket, 50 ms of burst), from a generated payload. Supply = %d x %s = %.1f MB/s.",
		seeders, rtt.Milliseconds(), rateText(rate), seeders, rateText(rate), supply/1e6)
	t.note("transfer s: from the first seeder's handshake to the client's completion line (ours prints it as the last piece is verified; libtorrent's script polls every 20 ms); share of supply = bytes verified on disk afterwards / transfer s / supply. wall s: from starting the client. CPU and peak RSS (VmHWM) are the kernel's for the client process over its whole run.")
	t.note("Our client runs `get` as in scenario b; python3-libtorrent runs bench/suite/lt_bench.py with libtorrent's default settings, as in scenario b.")
	return []*table{t}
}

// transferTime sets m.xfer: from the swarm's first handshake to the
// completion the client reported at start + m.wall.
func transferTime(m measured, start time.Time, sw *swarm.Swarm) measured {
	st := sw.Stats()
	if m.err == nil {
		m.err = swarmErr(st)
	} else {
		m.err = fmt.Errorf("the seeders sent %d MB, %d of %d handshaken, %d closed by the client: %w",
			st.Up/1e6, st.Handshaken, len(st.PerConn), st.RemoteCloses, m.err)
	}
	if st.FirstHandshake == 0 {
		if m.err == nil {
			m.err = fmt.Errorf("no seeder completed a handshake")
		}
		return m
	}
	first := st.At.Add(-st.Elapsed).Add(st.FirstHandshake)
	m.xfer = start.Add(m.wall).Sub(first)
	return m
}
