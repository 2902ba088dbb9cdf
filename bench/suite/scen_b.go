package suite

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"gotorrentserver/bench/swarm"
	"gotorrentserver/netio/peertest"
)

// scenarioB: the client downloads from 50 synthetic seeders that dial it
// from 50 loopback addresses and answer every request at once.
func scenarioB(e *env, tb *scope) []*table {
	size := int64(gib)
	if e.opt.Quick {
		size = 256 * mib
	}
	const seeders = 50
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	timeout := 10 * time.Minute
	tor := []swarm.Torrent{{Meta: pf.mi, Payload: pf.p}}
	t := &table{title: fmt.Sprintf("b. Download %d MiB (1 MiB pieces) from %d synthetic seeders", size>>20, seeders),
		cols: []string{"client", "wall s", "MB/s", "CPU s/GiB", "peak RSS MiB", "runs ok"}}
	startSwarm := func(port int) (*swarm.Swarm, error) {
		return swarm.Start(swarm.Config{Mode: swarm.Seed, Torrents: tor, Peers: seeders, Duration: timeout,
			Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))})
	}
	clients := []dlClient{{"gotorrentserver get", func(out string, run int) measured {
		tag := fmt.Sprintf("b-ours-run%d", run)
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
		if err := swarmErr(sw.Stats()); err != nil && m.err == nil {
			m.err = err
		}
		return m
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
			if err := swarmErr(sw.Stats()); err != nil && m.err == nil {
				m.err = err
			}
			return m
		}})
	}
	downloadTable(e, tb, t, clients, pf, "seeders connected (peak)")
	t.note("The synthetic seeders (bench/swarm, %d connections from 127.0.0.2..51 on two gnet loops in the benchmark process) dial the client once it listens, send a full bitfield, unchoke on interest and answer each request at once from a generated payload: the client's side is what is measured. Wall time runs from starting the client to its completion line.", seeders)
	t.note("Seeders connected (peak): most swarm connections past the handshake at once during the download, sampled every 50 ms.")
	return []*table{t}
}

// watchPeak samples the swarm's handshaken connections every 50 ms until
// the returned function is called, which returns the peak.
func watchPeak(sw *swarm.Swarm) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if h := sw.Stats().Handshaken; h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// waitListen waits until something accepts on 127.0.0.1:port.
func waitListen(port int, timeout time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v", addr, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
