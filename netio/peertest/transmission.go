package peertest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TransmissionOpts configures Transmission.
type TransmissionOpts struct {
	Torrent string // path of the .torrent
	Dir     string // data folder (-w): holds the data when seeding, receives it otherwise
	Port    int    // TCP peer port; 0 picks a free one
	// Seed: the data is already in Dir; transmission verifies it on add
	// and seeds.
	Seed bool
	// EncryptionRequired runs it with -er (settings "encryption": 2,
	// TR_ENCRYPTION_REQUIRED): MSE with RC4 only, plaintext peers refused.
	EncryptionRequired bool
	Timeout            time.Duration  // the process is stopped after this; 0 means 10 minutes
	Extra              map[string]any // settings.json keys that override ours
}

// transmissionSettings are written to settings.json in the private config
// folder; see Transmission for why each is there.
var transmissionSettings = map[string]any{
	"dht-enabled":                    false,
	"lpd-enabled":                    false,
	"pex-enabled":                    false,
	"utp-enabled":                    false,
	"port-forwarding-enabled":        false,
	"encryption":                     0,
	"peer-port-random-on-start":      false,
	"bind-address-ipv4":              "127.0.0.1",
	"bind-address-ipv6":              "::1",
	"rpc-enabled":                    false,
	"blocklist-enabled":              false,
	"ratio-limit-enabled":            false,
	"idle-seeding-limit-enabled":     false,
	"speed-limit-up-enabled":         false,
	"speed-limit-down-enabled":       false,
	"alt-speed-enabled":              false,
	"download-queue-enabled":         false,
	"seed-queue-enabled":             false,
	"queue-stalled-enabled":          false,
	"start-added-torrents":           true,
	"rename-partial-files":           false,
	"incomplete-dir-enabled":         false,
	"watch-dir-enabled":              false,
	"trash-original-torrent-files":   false,
	"script-torrent-done-enabled":    false,
	"scrape-paused-torrents-enabled": false,
	"message-level":                  2,
}

// Transmission starts transmission-cli (3.00) seeding or leeching
// opts.Torrent and returns at once; Port is set. transmission-cli never
// exits by itself: it seeds until the test stops it (by PID, at cleanup or
// after Timeout). WaitDone returns once a status line starts with
// "Seeding," or the log says State changed from "Incomplete" to
// "Complete".
//
// transmission-cli drops every peer address in 127.0.0.0/8 that it learns
// from a tracker (or PEX), as a "martian" address: "Got 4 peers from
// tracker" is followed by no connection at all. It does accept incoming
// connections from loopback, so tests make the other side dial it
// (lt_peer.py --peer 127.0.0.1:Port, or our daemon's own dial).
// It also updates its interest and unchokes only in its 10-second rechoke
// pulse, so a transfer with it starts up to about 10 s after connecting
// (measured here: 8 MiB take 13 to 15 s either way, mostly waiting).
//
// Settings. The command line is
//
//	[stdbuf -o0] transmission-cli -g <temp config> -w Dir -p Port -et -M -B -D -U Torrent
//
// -g gives it a private config folder, so no user config or resume data is
// read or written; -et (encryption tolerated, i.e. prefer plaintext: our
// peers speak plaintext; -er, required, with EncryptionRequired), -M (no UPnP/NAT-PMP), -B (no blocklist), -D -U
// (no speed limits). stdbuf -o0
// makes its '\r'-redrawn status line reach us as printed rather than in
// 4 KiB bursts (without stdbuf only the log lines arrive promptly).
// settings.json in that folder turns off what the command line cannot:
// dht-, lpd-, pex-, utp-enabled false (no peer source but the test, TCP
// only); port-forwarding-enabled false; encryption 0 (the same "tolerated"
// as -et, named TR_CLEAR_PREFERRED in 3.00); bind-address-ipv4 127.0.0.1
// and bind-address-ipv6 ::1 (loopback only); rpc-enabled false; no ratio,
// idle or speed limits and no queues, so it seeds and transfers at once
// and forever; rename-partial-files false and no incomplete-dir, so files
// appear under their torrent paths in Dir; trash-original-torrent-files
// false so the test's .torrent survives; message-level 2 (info) for the
// "State changed" line.
//
// Stop it before reading what it downloaded: it may keep written blocks in
// its memory cache (cache-size-mb, 4 MiB) until shutdown or its periodic
// save, even after reporting completion.
// Call from the test's goroutine: it may skip or fail tb.
func Transmission(tb testing.TB, opts TransmissionOpts) *Proc {
	tb.Helper()
	Require(tb, "transmission-cli")
	if opts.Torrent == "" || opts.Dir == "" {
		tb.Fatal("peertest: Transmission needs Torrent and Dir")
	}
	port := opts.Port
	if port == 0 {
		port = FreePort(tb)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	cfg := tb.TempDir()
	settings := map[string]any{"peer-port": port, "download-dir": opts.Dir}
	for k, v := range transmissionSettings {
		settings[k] = v
	}
	if opts.EncryptionRequired {
		settings["encryption"] = 2
	}
	for k, v := range opts.Extra {
		settings[k] = v
	}
	js, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), js, 0o644); err != nil {
		tb.Fatal(err)
	}
	enc := "-et"
	if opts.EncryptionRequired {
		enc = "-er"
	}
	args := []string{"-g", cfg, "-w", opts.Dir, "-p", fmt.Sprint(port), enc, "-M", "-B", "-D", "-U"}
	// No -v even when seeding: a new torrent whose files exist is verified
	// on add anyway, and -v queues a second verification whose brief
	// stopped state transmission-cli's main loop can read as "stopped",
	// exiting 0.2 s after start (seen under load).
	args = append(args, opts.Torrent)
	var p *Proc
	if Have("stdbuf") {
		p = Start(tb, "stdbuf", append([]string{"-o0", "transmission-cli"}, args...)...)
		p.Name = "transmission-cli"
	} else {
		p = Start(tb, "transmission-cli", args...)
	}
	p.Port = port
	p.done = transmissionDone
	p.stopAfter(tb, timeout)
	return p
}

func transmissionDone(line string) bool {
	return strings.HasPrefix(line, "Seeding,") ||
		strings.Contains(line, `State changed from "Incomplete" to "Complete"`)
}
