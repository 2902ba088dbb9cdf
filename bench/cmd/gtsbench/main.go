// Command gtsbench runs GoTorrentServer's benchmark scenarios beside real
// clients and a synthetic swarm, on 127.0.0.1, and writes one markdown
// table per scenario to bench/results/ (bench/results/quick/ with -quick).
// Run it from the module root:
//
//	go run ./bench/cmd/gtsbench            # everything, medians of 3 runs (about 35 min; g, h, i about 18)
//	go run ./bench/cmd/gtsbench -quick     # reduced sizes, 1 run (about 6 min)
//	go run ./bench/cmd/gtsbench -only a,f -profile /tmp/prof
//	go run ./bench/cmd/gtsbench -only a,c -modes rc4,utp   # only the encrypted and uTP rows
//
// Scenarios: a download beside aria2c, transmission-cli, python3-libtorrent;
// b download from 50 synthetic seeders; c seed to 1,000 and 5,000 synthetic
// leechers (a and c also over RC4 and uTP); d 10,000 idle connections over
// 100 torrents; e 10,000 torrents: start-up, API latency, transfer under
// API load; f recheck. WAN-like peers
// (rate caps, round trips, churn), beside python3-libtorrent: g seed one
// torrent to 100 and 2,000 leechers; h seed 200 torrents to 1,000 leechers,
// without and with a global upload limit; i download from 50 seeders.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gotorrentserver/bench/suite"
)

func main() {
	quick := flag.Bool("quick", false, "reduced sizes and one run each (about 6 minutes)")
	runs := flag.Int("runs", 0, "runs per figure (default 3, 1 with -quick)")
	only := flag.String("only", "", "comma-separated scenario ids to run (a,b,c,d,e,f,g,h,i); default all")
	modes := flag.String("modes", "", "comma-separated connection modes scenarios a and c measure: plain (TCP, unencrypted: their original rows), rc4 (MSE, RC4 required), utp; default all")
	out := flag.String("out", "", "folder for the reports (default bench/results, or bench/results/quick with -quick; \"-\" for none)")
	work := flag.String("work", "", "scratch folder (default a new temp folder, removed at the end); needs a few GiB")
	profile := flag.String("profile", "", "write the daemon's CPU and heap profiles (or /proc traces) to this folder")
	flag.Parse()

	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gtsbench:", err)
		os.Exit(1)
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "results")
		if *quick {
			*out = filepath.Join(*out, "quick")
		}
	} else if *out == "-" {
		*out = ""
	}
	if *profile != "" {
		if *profile, err = filepath.Abs(*profile); err != nil {
			fmt.Fprintln(os.Stderr, "gtsbench:", err)
			os.Exit(1)
		}
	}
	var ids []string
	if *only != "" {
		ids = strings.Split(*only, ",")
	}
	var ms []string
	if *modes != "" {
		ms = strings.Split(*modes, ",")
	}
	err = suite.Run(suite.Options{
		Quick: *quick, Runs: *runs, Only: ids, Modes: ms, OutDir: *out, WorkDir: *work, ProfileDir: *profile,
		Root: root, Command: strings.TrimSpace("go run ./bench/cmd/gtsbench " + strings.Join(os.Args[1:], " ")),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gtsbench:", err)
		os.Exit(1)
	}
}

// moduleRoot is the folder of the go.mod that holds this command.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run from inside the gotorrentserver module")
	}
	return filepath.Dir(gomod), nil
}
