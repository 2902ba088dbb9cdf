package tracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

const opentrackerPath = "/usr/bin/opentracker"

// freePort asks the kernel for an unused port of the network. The port is
// released before opentracker binds it; a clash is possible but unlikely.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startOpentracker runs the Debian whitelist build chrooted in a temp dir
// with hashes whitelisted, and returns its HTTP and UDP announce URLs.
func startOpentracker(t *testing.T, hashes ...metainfo.Hash) (httpURL, udpURL string) {
	t.Helper()
	if _, err := os.Stat(opentrackerPath); err != nil {
		t.Skip("SKIP (tool missing): opentracker not installed at " + opentrackerPath)
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP (needs root): opentracker chroots into its -d directory")
	}
	dir := t.TempDir()
	var wl strings.Builder
	for _, h := range hashes {
		wl.WriteString(h.String() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "access.whitelist"), []byte(wl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// opentracker drops to "nobody" after chrooting; the directory must
	// stay readable for it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tcpPort, udpPort := freePort(t, "tcp"), freePort(t, "udp")
	// A file rather than a Builder: exec copies into a Builder from its own
	// goroutine, racing with reads on failure.
	logPath := filepath.Join(t.TempDir(), "opentracker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	output := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.Command(opentrackerPath, "-i", "127.0.0.1", "-p", fmt.Sprint(tcpPort), "-P", fmt.Sprint(udpPort),
		"-d", dir, "-A", "127.0.0.1", "-w", "access.whitelist")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // by PID: the process we started
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", tcpPort)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker did not listen on %s: %v; output: %s", addr, err, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	httpURL = "http://" + addr + "/announce"
	// The whitelist is read by a separate thread after the ports open; until
	// then every hash is refused. Probe with a stopped event, which adds no
	// peer to the swarm.
	probe := testClient(t, Config{HTTPTimeout: time.Second})
	for _, h := range hashes {
		req := NewRequest(h, [20]byte([]byte("-GT0001-probePPPPPPP")), 1)
		req.Event = Stopped
		for {
			_, err := probe.Announce(context.Background(), httpURL, req)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("opentracker never accepted %s: %v; output: %s", h, err, output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return httpURL, fmt.Sprintf("udp://127.0.0.1:%d/announce", udpPort)
}

func TestOpentrackerInterop(t *testing.T) {
	hHTTP := metainfo.Hash{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x20, 0x00, 0x25, 0x26, 0x2b, 0x3d, 0xff, 0x7f, 0x80, 0x0a, 0x3f, 0x23}
	hUDP := metainfo.Hash{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b}
	hOther := metainfo.Hash{0x55}
	httpURL, udpURL := startOpentracker(t, hHTTP, hUDP)

	for _, tc := range []struct {
		name, url string
		hash      metainfo.Hash
	}{{"http", httpURL, hHTTP}, {"udp", udpURL, hUDP}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := Config{UDP: UDPConfig{BaseTimeout: 500 * time.Millisecond, MaxRetries: 3}}
			alice, bob := testClient(t, cfg), testClient(t, cfg)
			reqA := NewRequest(tc.hash, [20]byte([]byte("-GT0001-aliceAAAAAAA")), 41001)
			reqB := NewRequest(tc.hash, [20]byte([]byte("-GT0001-bob\x00\xff BBBBBB")), 41002)
			reqA.Event, reqB.Event = Started, Started
			reqA.Left, reqB.Left = 1000, 0 // bob seeds
			reqA.Key, reqB.Key = 1, 2
			if _, err := alice.Announce(ctx, tc.url, reqA); err != nil {
				t.Fatalf("alice: %v", err)
			}
			respB, err := bob.Announce(ctx, tc.url, reqB)
			if err != nil {
				t.Fatalf("bob: %v", err)
			}
			reqA.Event = None
			respA, err := alice.Announce(ctx, tc.url, reqA)
			if err != nil {
				t.Fatalf("alice again: %v", err)
			}
			alicePeer := netip.MustParseAddrPort("127.0.0.1:41001")
			bobPeer := netip.MustParseAddrPort("127.0.0.1:41002")
			if !slices.Contains(respB.Peers, alicePeer) {
				t.Errorf("bob did not learn alice: %v", respB.Peers)
			}
			if !slices.Contains(respA.Peers, bobPeer) {
				t.Errorf("alice did not learn bob: %v", respA.Peers)
			}
			if respA.Seeders != 1 || respA.Leechers != 1 || respA.Interval <= 0 {
				t.Errorf("swarm counts: %d seeders %d leechers interval %v, want 1/1/>0",
					respA.Seeders, respA.Leechers, respA.Interval)
			}
			// Stopped removes bob from the swarm.
			reqB.Event = Stopped
			if _, err := bob.Announce(ctx, tc.url, reqB); err != nil {
				t.Fatalf("bob stopped: %v", err)
			}
			respA, err = alice.Announce(ctx, tc.url, reqA)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(respA.Peers, bobPeer) || respA.Seeders != 0 {
				t.Errorf("after bob stopped alice still sees him: %v, %d seeders", respA.Peers, respA.Seeders)
			}
		})
	}

	// A hash outside the whitelist: HTTP reports a failure reason.
	c := testClient(t, Config{})
	_, err := c.Announce(context.Background(), httpURL, NewRequest(hOther, [20]byte{1}, 1))
	if _, ok := errors.AsType[*TrackerError](err); !ok {
		t.Errorf("non-whitelisted hash over HTTP: err = %v, want TrackerError", err)
	}
}
