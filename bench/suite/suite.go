// Package suite runs GoTorrentServer's benchmark scenarios beside real
// clients (python3-libtorrent, aria2c, transmission-cli) and the synthetic
// swarm of bench/swarm, all on 127.0.0.1, and writes one markdown table
// per scenario. Our daemon is built from the working tree and run as its
// own process, so its CPU time and memory are read from the kernel exactly
// like the peers'. The entry point is bench/cmd/gtsbench.
package suite

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configure a suite run.
type Options struct {
	Quick      bool     // reduced sizes and one run each (about 6 minutes)
	Runs       int      // runs per measurement; default 3, Quick 1
	Only       []string // scenario ids ("a".."i"); empty: all
	Modes      []string // connection modes a and c measure (modePlain, modeRC4, modeUTP); empty: all
	OutDir     string   // where <id>.md and summary.md go; empty: nowhere
	WorkDir    string   // scratch; empty: a temp folder, removed at the end
	ProfileDir string   // when set, the daemon's profiles (or /proc traces) go here
	Root       string   // module root, to build the daemon
	Command    string   // how the suite was invoked, quoted in the reports
	Log        io.Writer
}

// Connection modes of Options.Modes: modePlain is TCP without encryption,
// every row a and c had before the other two.
const (
	modePlain = "plain"
	modeRC4   = "rc4" // MSE, RC4 required
	modeUTP   = "utp"
)

var allModes = []string{modePlain, modeRC4, modeUTP}

// mode reports whether the run measures the connection mode m.
func (o *Options) mode(m string) bool { return len(o.Modes) == 0 || slices.Contains(o.Modes, m) }

// scenario is one benchmark; run fills tables and may skip via tb.
type scenario struct {
	id, title string
	run       func(e *env, tb *scope) []*table
}

func scenarios() []scenario {
	return []scenario{
		{"a", "Download from one python3-libtorrent seeder", scenarioA},
		{"b", "Download from 50 synthetic seeders", scenarioB},
		{"c", "Seed to synthetic leechers", scenarioC},
		{"d", "Idle handshaken connections over 100 torrents", scenarioD},
		{"e", "Many torrents loaded: start-up, API latency, transfer under API load", scenarioE},
		{"f", "Recheck", scenarioF},
		{"g", "Seed to WAN-like leechers (rate caps, RTT, churn)", scenarioG},
		{"h", "Seed many torrents to WAN-like leechers, with and without a global upload limit", scenarioH},
		{"i", "Download from WAN-like synthetic seeders (rate caps, RTT)", scenarioI},
	}
}

// Run builds the daemon and runs the chosen scenarios in order, printing
// each table as it completes and writing the reports. It returns an error
// only when nothing could run; scenario failures are reported in place.
func Run(opt Options) error {
	if opt.Log == nil {
		opt.Log = os.Stdout
	}
	if opt.Runs <= 0 {
		opt.Runs = 3
		if opt.Quick {
			opt.Runs = 1
		}
	}
	if opt.WorkDir == "" {
		d, err := os.MkdirTemp("", "gtsbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		opt.WorkDir = d
	}
	for _, d := range []string{opt.OutDir, opt.ProfileDir} {
		if d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	for _, m := range opt.Modes {
		if !slices.Contains(allModes, m) {
			return fmt.Errorf("suite: mode %q: want one of %s", m, strings.Join(allModes, ", "))
		}
	}
	e := &env{opt: opt, log: opt.Log, payloads: map[int64]*payloadFiles{}, notes: map[string]string{}}
	o, err := buildOurs(opt.Root, filepath.Join(opt.WorkDir, "bin"))
	if err != nil {
		return err
	}
	e.ours = o
	header := fmt.Sprintf("Run %s on %s.\n\nVersions: %s.\n\nCommand: `%s` (runs per figure: %d; medians).\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), e.versions(), opt.Command, opt.Runs)
	fmt.Fprintln(opt.Log, header)
	var summary strings.Builder
	summary.WriteString("# GoTorrentServer benchmarks\n\n" + header + "\n")
	for _, sc := range scenarios() {
		if len(opt.Only) > 0 && !slices.Contains(opt.Only, sc.id) {
			continue
		}
		start := time.Now()
		fmt.Fprintf(opt.Log, "== %s: %s\n", sc.id, sc.title)
		var tables []*table
		tb := newScope(sc.id, opt.WorkDir, opt.Log)
		skip, err := tb.run(func(tb *scope) { tables = sc.run(e, tb) })
		var b strings.Builder
		fmt.Fprintf(&b, "## %s. %s\n\n", sc.id, sc.title)
		for _, t := range tables {
			b.WriteString(t.markdown() + "\n")
		}
		switch {
		case skip:
			fmt.Fprintf(&b, "Skipped: %v\n\n", err)
		case err != nil:
			fmt.Fprintf(&b, "Failed: %v\n\n", err)
		}
		fmt.Fprintf(&b, "_%s took %.0f s._\n", sc.id, time.Since(start).Seconds())
		fmt.Fprintln(opt.Log, b.String())
		summary.WriteString(b.String() + "\n")
		if opt.OutDir != "" {
			doc := "# " + sc.title + "\n\n" + header + "\n" + b.String()
			if err := os.WriteFile(filepath.Join(opt.OutDir, sc.id+".md"), []byte(doc), 0o644); err != nil {
				return err
			}
		}
	}
	if len(e.notes) > 0 {
		summary.WriteString("## Notes\n\n")
		for _, k := range slices.Sorted(maps.Keys(e.notes)) {
			summary.WriteString("- " + e.notes[k] + "\n")
		}
	}
	if opt.OutDir != "" && len(opt.Only) == 0 {
		return os.WriteFile(filepath.Join(opt.OutDir, "summary.md"), []byte(summary.String()), 0o644)
	}
	return nil
}
