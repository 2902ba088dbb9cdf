package dht

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

const python = "/usr/bin/python3"

// ltNode is a libtorrent DHT node run by testdata/lt_dht.py.
type ltNode struct {
	t      *testing.T
	stdin  io.WriteCloser
	events chan map[string]any
	addr   netip.AddrPort
	mu     sync.Mutex
	log    []string
}

func startLibtorrent(t *testing.T, bootstrap netip.AddrPort) *ltNode {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skip("SKIP (tool missing): " + python + " not installed")
	}
	if out, err := exec.Command(python, "-c", "import libtorrent").CombinedOutput(); err != nil {
		t.Skip("SKIP (tool missing): python3-libtorrent not importable: " + string(out))
	}
	cmd := exec.Command(python, "testdata/lt_dht.py", bootstrap.String(), "60")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lt := &ltNode{t: t, stdin: stdin, events: make(chan map[string]any, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lt.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if ev["event"] == "log" {
				lt.mu.Lock()
				lt.log = append(lt.log, fmt.Sprint(ev["msg"]))
				lt.mu.Unlock()
				continue
			}
			lt.events <- ev
		}
	}()
	t.Cleanup(func() {
		io.WriteString(stdin, "quit\n")
		stdin.Close()
		timer := time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		timer.Stop()
		<-done
		if t.Failed() {
			lt.mu.Lock()
			defer lt.mu.Unlock()
			t.Logf("libtorrent DHT log (last 200 lines):\n%s", strings.Join(lt.log[max(0, len(lt.log)-200):], "\n"))
		}
	})
	ev := lt.waitEvent("ready", 10*time.Second, nil)
	lt.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ev["port"].(float64)))
	return lt
}

func (lt *ltNode) command(format string, args ...any) {
	if _, err := fmt.Fprintf(lt.stdin, format+"\n", args...); err != nil {
		lt.t.Fatal(err)
	}
}

// waitEvent returns the first event named name that match accepts.
func (lt *ltNode) waitEvent(name string, d time.Duration, match func(map[string]any) bool) map[string]any {
	lt.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-lt.events:
			if !ok {
				lt.t.Fatalf("libtorrent exited while waiting for %s", name)
			}
			if ev["event"] == name && (match == nil || match(ev)) {
				return ev
			}
		case <-timer.C:
			lt.t.Fatalf("no %s event from libtorrent within %v", name, d)
		}
	}
}

func hasNode(n *Node, addr netip.AddrPort) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table.byAddr[addr] != nil
}

// Our nodes A and B and a libtorrent 2.0.8 node L, all on 127.0.0.1; L
// and B know only A. Each side's announce must be found by the other.
func TestInteropLibtorrent(t *testing.T) {
	a := startNode(t, Config{})
	b := startNode(t, Config{Bootstrap: []string{a.LocalAddr().String()}})
	if err := b.Bootstrap(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	lt := startLibtorrent(t, a.LocalAddr())
	// L queries A on bootstrap; A pings it back and adds it; B learns L
	// when it looks itself up again through A.
	waitFor(t, 20*time.Second, "our node to add libtorrent to its table", func() bool { return hasNode(a, lt.addr) })
	waitFor(t, 10*time.Second, "node B to learn libtorrent through A", func() bool {
		b.Bootstrap(testCtx(t, 5*time.Second))
		return hasNode(b, lt.addr)
	})

	// libtorrent announces (with its listen port); our node finds it.
	ihL := metainfo.Hash(RandomNodeID())
	lt.command("announce %s", ihL)
	wantL := lt.addr
	waitFor(t, 20*time.Second, "libtorrent's announce to reach our nodes", func() bool {
		return a.Stats().StoredPeers+b.Stats().StoredPeers > 0
	})
	var found []netip.AddrPort
	if err := b.GetPeers(testCtx(t, 10*time.Second), ihL, func(ps []netip.AddrPort) { found = append(found, ps...) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(found, wantL) {
		t.Fatalf("our get_peers found %v, want libtorrent's %v", found, wantL)
	}

	// We announce; libtorrent accepts our announce_peer and finds the
	// peer with its own get_peers.
	ihO := metainfo.Hash(RandomNodeID())
	n, err := a.Announce(testCtx(t, 10*time.Second), ihO, 7002, nil)
	if err != nil || n == 0 {
		t.Fatalf("announce: %d nodes, %v", n, err)
	}
	lt.waitEvent("announced", 10*time.Second, func(ev map[string]any) bool {
		return ev["ih"] == ihO.String() && ev["port"] == float64(7002)
	})
	// libtorrent's reply to get_peers carries our announce as values,
	// which our parser must read.
	r, err := b.query(testCtx(t, 5*time.Second), lt.addr, Msg{Q: MethodGetPeers, A: Args{InfoHash: ihO}})
	wantO := netip.AddrPortFrom(a.LocalAddr().Addr(), 7002)
	if err != nil || !slices.Contains(r.R.Values, wantO) || len(r.R.Token) == 0 {
		t.Fatalf("libtorrent's get_peers reply %+v, %v: want value %v and a token", r.R, err, wantO)
	}
	lt.command("get_peers %s", ihO)
	lt.waitEvent("peers", 20*time.Second, func(ev map[string]any) bool {
		ps, _ := ev["peers"].([]any)
		return ev["ih"] == ihO.String() && slices.Contains(ps, any(wantO.String()))
	})

	// A peer stored only on our node A (libtorrent also stores what it is
	// announced, and answers its own lookups): libtorrent can only learn it
	// from our get_peers reply.
	ihA := metainfo.Hash(RandomNodeID())
	r, err = b.query(testCtx(t, 5*time.Second), a.LocalAddr(), Msg{Q: MethodGetPeers, A: Args{InfoHash: ihA}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.query(testCtx(t, 5*time.Second), a.LocalAddr(), Msg{Q: MethodAnnouncePeer,
		A: Args{InfoHash: ihA, Port: 7003, Token: r.R.Token}}); err != nil {
		t.Fatal(err)
	}
	wantA := netip.AddrPortFrom(b.LocalAddr().Addr(), 7003)
	lt.command("get_peers %s", ihA)
	lt.waitEvent("peers", 20*time.Second, func(ev map[string]any) bool {
		ps, _ := ev["peers"].([]any)
		return ev["ih"] == ihA.String() && slices.Contains(ps, any(wantA.String()))
	})
}
