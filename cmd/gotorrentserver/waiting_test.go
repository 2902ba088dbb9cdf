package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGetSaysWhatItWaitsFor: a get that cannot move says why on stderr,
// once per condition: with its only tracker on a closed local port, that
// no peer is known and the tracker does not answer (with its error); told
// of a peer that is not there, that one peer is known and none connected;
// connected to a peer with nothing (another empty get), that none has
// pieces it needs.
func TestGetSaysWhatItWaitsFor(t *testing.T) {
	closed := freePort(t)
	tracker := fmt.Sprintf("http://127.0.0.1:%d/announce", closed)
	raw, _ := makeFolderTorrent(t, t.TempDir(), "stuck", []string{tracker}, fileSpec{"a.bin", 100000})
	file := writeTorrentFile(t, raw)

	// All four start at once: each waits a few seconds before saying.
	noPeers := startGet(t, file, "-o", t.TempDir(), "-listen", "127.0.0.1:0")
	absent := startGet(t, file, "-o", t.TempDir(), "-listen", "127.0.0.1:0", "-peer", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	emptyPort := freePort(t)
	startGet(t, file, "-o", t.TempDir(), "-listen", fmt.Sprintf("127.0.0.1:%d", emptyPort))
	idle := startGet(t, file, "-o", t.TempDir(), "-listen", "127.0.0.1:0", "-peer", fmt.Sprintf("127.0.0.1:%d", emptyPort))

	want := "waiting: no peers known yet (trackers: 0 of 1 answering; last error: "
	waitOutput(t, noPeers, want, 30*time.Second)
	if !strings.Contains(noPeers.stderr.String(), want) {
		t.Fatalf("the waiting line is not on stderr:\nstdout %s\nstderr %s", noPeers.stdout, noPeers.stderr)
	}
	waitOutput(t, absent, "waiting: 1 peer known, none connected\n", 30*time.Second)
	waitOutput(t, idle, "waiting: connected to 1 peer, none has pieces we need\n", 30*time.Second)
	t.Logf("stderr of get with a closed tracker:\n%s", noPeers.stderr)
	time.Sleep(2 * time.Second) // not for correctness: gives a repeat the chance to show
	// Once per condition: the first get, still stuck, has not repeated it.
	if n := strings.Count(noPeers.stderr.String(), want); n != 1 {
		t.Fatalf("waiting line printed %d times:\n%s", n, noPeers.stderr)
	}
}
