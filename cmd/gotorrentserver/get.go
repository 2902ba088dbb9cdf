package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

func runGet(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	out := fs.String("o", ".", "download folder (the torrent's name is created below it)")
	seed := fs.Bool("seed", false, "keep seeding after the download completes, until interrupted")
	listen := fs.String("listen", "0.0.0.0:6881", "address for incoming peer connections")
	maxDown := fs.Int64("max-down", 0, "download limit in KiB/s (0 = unlimited)")
	maxUp := fs.Int64("max-up", 0, "upload limit in KiB/s (0 = unlimited)")
	sequential := fs.Bool("sequential", false, "download pieces in order")
	var dhtf dhtFlags
	dhtf.register(fs)
	var enc encryptionFlag
	enc.register(fs)
	var prof profileFlags
	prof.register(fs)
	// get reports progress and completion itself: its log (on stderr)
	// holds only trouble unless asked for more.
	var logf logFlags
	logf.register(fs, slog.LevelWarn)
	var peers repeated
	fs.Var(&peers, "peer", "peer address HOST:PORT to connect to; may repeat")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gotorrentserver get [flags] FILE.torrent|MAGNET")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(fs, "need exactly one torrent file or magnet link")
	}
	var mi *metainfo.MetaInfo
	var mag *metainfo.Magnet
	var err error
	if strings.HasPrefix(fs.Arg(0), "magnet:") {
		mag, err = metainfo.ParseMagnet(fs.Arg(0))
	} else {
		var b []byte
		if b, err = readTorrentFile(fs.Arg(0)); err == nil {
			mi, err = metainfo.Parse(b)
		}
	}
	if err != nil {
		return err
	}
	var addrs []netip.AddrPort
	for _, p := range peers {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return fmt.Errorf("-peer %q: %v", p, err)
		}
		addrs = append(addrs, ap)
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	defer prof.start()()
	st, err := buildStack(stackConfig{
		PeerAddr: *listen, DHT: dhtf, Encryption: enc.Encryption, Logger: logf.logger(os.Stderr),
		Engine: engine.Config{PeerID: wire.NewPeerID(rand.Reader)},
	})
	if err != nil {
		return err
	}
	defer st.stop()
	client := st.client
	opt := engine.AddOptions{Settings: engine.Settings{Dir: dir, MaxDown: *maxDown << 10, MaxUp: *maxUp << 10, Sequential: *sequential}}
	var sess *engine.Session
	if mag != nil {
		sess, err = client.AddMagnet(mag, opt)
	} else {
		sess, err = client.Add(mi, opt)
	}
	if err != nil {
		return err
	}
	sess.AddPeers(addrs, "user")
	return watch(sess, *seed, stdout, os.Stderr)
}

// waitGrace is how long get waits quietly before saying what it waits for:
// trackers and peers usually answer within it.
const waitGrace = 3 * time.Second

// watch prints progress until the download completes (or, with seed, until
// interrupted) and returns an error if the torrent fails. While nothing
// moves it says why on stderr, once per change of condition.
func watch(sess *engine.Session, seed bool, stdout, stderr io.Writer) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	tty := isTerminal(stdout)
	start := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	// The completion line comes when the last piece is verified, not at
	// the next progress tick.
	complete := make(chan struct{})
	sess.WhenComplete(func() { close(complete) })
	done := false
	waiting := ""
	for {
		select {
		case <-sig:
			if tty {
				fmt.Fprintln(stdout)
			}
			if done {
				return nil
			}
			return errors.New("interrupted")
		case <-tick.C:
		case <-complete:
			complete = nil
		}
		sn := sess.Snapshot()
		if tty {
			fmt.Fprintf(stdout, "\r%-10s %5.1f%%  down %s/s  up %s/s  peers %d   ", sn.State,
				100*sn.Progress(), humanBytes(sn.DownRate), humanBytes(sn.UpRate), connected(sn))
		}
		if why := waitingFor(sn); why != waiting && time.Since(start) >= waitGrace {
			waiting = why
			if why != "" {
				if tty {
					fmt.Fprintln(stdout) // keep the progress line whole
				}
				fmt.Fprintf(stderr, "waiting: %s\n", why)
			}
		}
		switch {
		case sn.State == engine.StateError:
			return fmt.Errorf("%s", sn.Error)
		case sn.State == engine.StateSeeding && !done:
			done = true
			el := time.Since(start)
			if tty {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "%s complete: %s in %.1fs (%.1f MB/s), %s\n", sn.InfoHash, humanBytes(sn.Size),
				el.Seconds(), float64(sn.Downloaded)/1e6/el.Seconds(), sn.Dir)
			if !seed {
				return nil
			}
		}
	}
}

func connected(sn *engine.Snapshot) int {
	n := 0
	for _, p := range sn.Peers {
		if p.Connected {
			n++
		}
	}
	return n
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
