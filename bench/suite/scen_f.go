package suite

import (
	"fmt"
	"os/exec"
	"time"

	"gotorrentserver/netio/peertest"
)

// scenarioF: a full recheck of the same data, ours beside libtorrent's
// force_recheck, data in the page cache.
func scenarioF(e *env, tb *scope) []*table {
	size := int64(gib)
	if e.opt.Quick {
		size = 256 * mib
	}
	pf, err := e.payload(size)
	if err != nil {
		tb.Fatal(err)
	}
	t := &table{title: fmt.Sprintf("f. Recheck of %d MiB (1 MiB pieces), data in the page cache", size>>20),
		cols: []string{"checker", "check s", "MB/s", "process CPU s/GiB", "peak RSS MiB", "runs ok"}}
	type checker struct {
		name string
		run  func(run int) (secs float64, cpu time.Duration, hwm int64, err error)
	}
	checkers := []checker{
		{"gotorrentserver engine (gtscheck)", func(run int) (float64, time.Duration, int64, error) {
			var pa []string
			if e.opt.ProfileDir != "" {
				tag := fmt.Sprintf("%s/f-ours-run%d", e.opt.ProfileDir, run)
				pa = []string{"-cpuprofile", tag + ".cpu.pprof", "-memprofile", tag + ".heap.pprof"}
			}
			p := startOwn(tb, 0, e.ours.check, append(append(pa, "-o", pf.dir), pf.torrent)...)
			line, err := p.waitFor("CHECK ", 10*time.Minute)
			if err != nil {
				return 0, 0, 0, err
			}
			if _, err := p.waitFor("", time.Minute); err != nil {
				return 0, 0, 0, err
			}
			var secs float64
			var have, n int
			fmt.Sscanf(line, "CHECK %f %d %d", &secs, &have, &n)
			if have != n || n != pf.mi.NumPieces() {
				return 0, 0, 0, fmt.Errorf("%d of %d pieces passed", have, n)
			}
			u := p.usage()
			return secs, u.CPU, u.HWM, nil
		}},
		{"gotorrentserver get (process start to exit)", func(run int) (float64, time.Duration, int64, error) {
			p := startOwn(tb, 0, e.ours.bin, "get", "-listen", "127.0.0.1:0", "-o", pf.dir, pf.torrent)
			if _, err := p.waitFor("", 10*time.Minute); err != nil {
				return 0, 0, 0, err
			}
			u := p.usage()
			return p.wall().Seconds(), u.CPU, u.HWM, nil
		}},
	}
	if peertest.Have("libtorrent") {
		checkers = append(checkers, checker{"python3-libtorrent force_recheck", func(int) (float64, time.Duration, int64, error) {
			start := time.Now()
			p := peertest.Libtorrent(tb, "--torrent", pf.torrent, "--dir", pf.dir, "--seed-mode", "--recheck")
			defer p.Stop()
			var line string
			m := watchPeer(start, []string{"lt_peer.py", "--recheck", pf.dir}, func() error {
				var err error
				line, err = p.WaitLine("RECHECK ", 10*time.Minute)
				return err
			})
			if m.err != nil {
				return 0, 0, 0, m.err
			}
			var secs float64
			var n int
			fmt.Sscanf(line, "RECHECK %f %d", &secs, &n)
			if n != pf.mi.NumPieces() {
				return 0, 0, 0, fmt.Errorf("libtorrent has %d of %d pieces after the recheck", n, pf.mi.NumPieces())
			}
			return secs, m.cpu, m.hwm, nil
		}})
	}
	res := map[string]series{}
	ok := map[string]int{}
	for r := range e.opt.Runs {
		for _, c := range rotate(checkers, r) {
			exec.Command("sync").Run()
			secs, cpu, hwm, err := c.run(r)
			e.logf("  run %d %-44s %6.3fs  cpu %5.2fs  peak %4.0f MiB  %s", r+1, c.name, secs, cpu.Seconds(), float64(hwm)/mib, errText(err))
			if err != nil {
				t.note("%s, run %d: %v", c.name, r+1, firstLine(err))
				continue
			}
			if res[c.name] == nil {
				res[c.name] = series{}
			}
			s := res[c.name]
			ok[c.name]++
			s.add("secs", secs)
			s.add("mbps", float64(size)/1e6/secs)
			s.add("cpu", cpu.Seconds()/(float64(size)/gib))
			s.add("rss", float64(hwm)/mib)
		}
	}
	for _, c := range checkers {
		s := res[c.name]
		if s == nil {
			t.add(c.name, "–", "–", "–", "–", fmt.Sprintf("0/%d", e.opt.Runs))
			continue
		}
		t.add(c.name, f(s.med("secs"), 3), f(s.med("mbps"), 0), f(s.med("cpu"), 2), f(s.med("rss"), 0),
			fmt.Sprintf("%d/%d", ok[c.name], e.opt.Runs))
	}
	t.note("check s: gtscheck runs the daemon's own path (engine.Client.Add without resume data: every piece hashed on the hash pool) and times Add to the snapshot turning complete, polled every 1 ms; libtorrent (lt_peer.py --seed-mode --recheck) times force_recheck to the end of checking, polled every 5 ms. The `get` row is process start to exit, which also includes start-up and shutdown.")
	t.note("Process CPU includes each process's start-up (python3 importing libtorrent; Go runtime and engine start).")
	return []*table{t}
}
