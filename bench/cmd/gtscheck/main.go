// Command gtscheck times our recheck of a torrent's data exactly as the
// daemon runs it (engine.Client.Add without resume data: every piece hashed
// on the client's hash pool), polling the session every millisecond, and
// prints "CHECK seconds have pieces". The benchmark suite runs it as its own
// process for scenario f, because `get` reports completion only on its
// 250 ms progress tick.
//
//	gtscheck [-cpuprofile FILE] [-memprofile FILE] -o DIR FILE.torrent
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

func main() {
	dir := flag.String("o", ".", "folder holding the torrent's data (as get -o)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the check to FILE")
	memProfile := flag.String("memprofile", "", "write a heap profile after the check to FILE")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gtscheck [-cpuprofile FILE] [-memprofile FILE] -o DIR FILE.torrent")
		os.Exit(2)
	}
	if err := run(*dir, flag.Arg(0), *cpuProfile, *memProfile); err != nil {
		fmt.Fprintln(os.Stderr, "gtscheck:", err)
		os.Exit(1)
	}
}

func run(dir, torrent, cpuProfile, memProfile string) error {
	b, err := os.ReadFile(torrent)
	if err != nil {
		return err
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	c := engine.New(engine.Config{PeerID: wire.NewPeerID(rand.Reader), Logf: func(string, ...any) {}})
	defer c.Close()
	start := time.Now()
	s, err := c.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: dir}})
	if err != nil {
		return err
	}
	for {
		sn := s.Snapshot()
		switch sn.State {
		case engine.StateError:
			return fmt.Errorf("%s", sn.Error)
		case engine.StateSeeding, engine.StateDownloading:
			fmt.Printf("CHECK %.4f %d %d\n", time.Since(start).Seconds(), sn.Have, sn.NumPieces)
			if memProfile != "" {
				runtime.GC()
				f, err := os.Create(memProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				return pprof.WriteHeapProfile(f)
			}
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}
