package peertest

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// Aria2Opts configures Aria2.
type Aria2Opts struct {
	Torrent string // path of the .torrent
	Dir     string // data folder: holds the data when seeding, receives it otherwise

	// Seed: the data is already in Dir. aria2 checks every piece
	// (--check-integrity) and then seeds until stopped.
	Seed bool
	// KeepSeeding: a leecher keeps seeding after completing, instead of
	// exiting.
	KeepSeeding bool

	Port     int           // TCP listen port; 0 picks a free one
	Trackers []string      // announce URLs added to the torrent's own (HTTP only, see Aria2)
	Timeout  time.Duration // aria2 stops itself after this; 0 means 10 minutes
	Extra    []string      // more aria2c options, placed last so they override ours
}

// Aria2 starts aria2c (1.36) seeding or leeching opts.Torrent and returns
// at once; Port is set. WaitDone reports completion: a leecher prints
// "Download complete:" and, without KeepSeeding, exits 0 (also counted);
// any client prints a readout with "SEED(" once it holds every piece, which
// for a seeder means its check passed.
//
// aria2 has no way to be told "connect to this peer": it learns peers only
// from trackers (DHT, PEX and LPD are off here). Tests put it behind
// Opentracker's HTTPURL, in the .torrent or in Trackers, and start it after
// the peers it must reach have announced (Tracker.WaitSwarm); peers that
// know its port may also dial it. UDP trackers do not work: aria2 handles
// them only with DHT on ("udp is not supported yet" otherwise), and DHT
// would read the user's routing table and reach the Internet.
//
// Settings, and why:
//   - --no-conf=true: ignore the user's aria2.conf.
//   - --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
//     --enable-peer-exchange=false: no peer source but the trackers, and no
//     traffic off the machine.
//   - --interface=127.0.0.1 --listen-port=Port --disable-ipv6=true: listen
//     and dial on loopback only (aria2 has no separate listen address;
//     --interface binds the listening socket too).
//   - --bt-require-crypto=false --bt-min-crypto-level=plain: accept and
//     fall back to the plain BitTorrent handshake. aria2 still opens every
//     outgoing connection with an obfuscated (MSE) handshake and retries in
//     plaintext ("Retry using legacy BitTorrent handshake") about a second
//     after the peer hangs up; no option turns that first attempt off.
//   - --bt-tracker-connect-timeout=3 --bt-tracker-timeout=3: a loopback
//     tracker answers at once or never.
//   - --bt-tracker-interval=2: re-announce every 2 s whatever the tracker
//     says (opentracker says 30 min), so peers that announce later are
//     still found.
//   - --seed-ratio=0.0 and, for a leecher without KeepSeeding,
//     --seed-time=0: seed regardless of ratio; a leecher exits as soon as
//     it completes.
//   - --check-integrity=true (Seed only) with the default
//     --bt-hash-check-seed=true: verify the data, then seed it.
//   - --allow-overwrite=true --auto-file-renaming=false: files land at the
//     torrent's paths even if a stale file is there, never as "name.1".
//   - --file-allocation=none: no preallocation time in measurements.
//   - --summary-interval=1 --console-log-level=notice --enable-color=false:
//     a readout every second and the notices, without ANSI colours.
//   - --stop=Timeout --stop-with-process=<test binary's PID>: aria2 exits
//     by itself if the test forgets it or dies.
//
// Not used: --bt-stop-timeout (a leecher may legitimately wait at zero
// speed for the peer under test to start; --stop bounds the run instead),
// --bt-detach-seed-only (only affects counting against -j with several
// downloads; there is one), --bt-external-ip (the tracker sees 127.0.0.1).
//
// Call from the test's goroutine: it may skip or fail tb.
func Aria2(tb testing.TB, opts Aria2Opts) *Proc {
	tb.Helper()
	Require(tb, "aria2c")
	if opts.Torrent == "" || opts.Dir == "" {
		tb.Fatal("peertest: Aria2 needs Torrent and Dir")
	}
	port := opts.Port
	if port == 0 {
		port = FreePort(tb)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	args := []string{
		"--no-conf=true",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--interface=127.0.0.1", fmt.Sprintf("--listen-port=%d", port), "--disable-ipv6=true",
		"--bt-require-crypto=false", "--bt-min-crypto-level=plain",
		"--bt-tracker-connect-timeout=3", "--bt-tracker-timeout=3", "--bt-tracker-interval=2",
		"--seed-ratio=0.0",
		"--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
		"--summary-interval=1", "--console-log-level=notice", "--enable-color=false",
		fmt.Sprintf("--stop=%d", int(math.Ceil(timeout.Seconds()))),
		fmt.Sprintf("--stop-with-process=%d", os.Getpid()),
		"--dir=" + opts.Dir,
	}
	if opts.Seed {
		args = append(args, "--check-integrity=true")
	} else if !opts.KeepSeeding {
		args = append(args, "--seed-time=0")
	}
	if len(opts.Trackers) > 0 {
		args = append(args, "--bt-tracker="+strings.Join(opts.Trackers, ","))
	}
	args = append(args, opts.Extra...)
	args = append(args, "--torrent-file="+opts.Torrent)
	p := Start(tb, "aria2c", args...)
	p.Port = port
	p.done = aria2Done
	p.exitDone = !opts.Seed && !opts.KeepSeeding
	return p
}

// aria2Done recognises the completion notice and the readout of a torrent
// in seed state, e.g. "[#6f6de4 SEED(0.0) CN:2 SD:0]".
func aria2Done(line string) bool {
	return strings.Contains(line, "[NOTICE] Download complete:") ||
		strings.HasPrefix(line, "[#") && strings.Contains(line, " SEED(")
}
