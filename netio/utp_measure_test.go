package netio

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio/peertest"
)

// These measurements back the choice of our own uTP (see the commit that
// added them): they run only with GTS_UTP_MEASURE=1, one at a time, on a
// quiet machine:
//
//	GTS_UTP_MEASURE=1 go test -run 'TestUTPMeasure' -v ./netio

// ltBuffers gives libtorrent the socket buffers our UDP socket asks for.
var ltBuffers = fmt.Sprintf("--socket-buffers=%d", socketBuffer)

func measuring(t *testing.T) {
	if os.Getenv("GTS_UTP_MEASURE") == "" {
		t.Skip("a measurement: set GTS_UTP_MEASURE=1")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestUTPMeasureThroughput downloads one 256 MiB torrent over uTP on
// loopback four ways: libtorrent to libtorrent (both uTP only), ours to
// ours over uTP, ours to ours over TCP, and libtorrent (uTP only) to us;
// it logs the rates and the CPU time each took.
func TestUTPMeasureThroughput(t *testing.T) {
	measuring(t)
	peertest.Require(t, "libtorrent")
	data := testData(t, "measure", []int{256 << 20})
	tpath, mi := makeTorrent(t, data, 1<<20)
	size := float64(mi.TotalLength)
	rounds, _ := strconv.Atoi(os.Getenv("GTS_UTP_ROUNDS"))
	for round := 0; round < max(rounds, 1); round++ {
		if os.Getenv("GTS_UTP_OURS") != "" {
			secs, cpu := oursToOurs(t, mi, filepath.Dir(data), false)
			t.Logf("round %d: ours -> ours uTP: %.1f MB/s (%.2f s), CPU %.2f s", round, size/secs.Seconds()/1e6, secs.Seconds(), cpu.Seconds())
			continue
		}
		// libtorrent to libtorrent, uTP only.
		seed := peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep", "--seed-mode", "--utp-only", "--plaintext", ltBuffers)
		if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		cpu0 := seed.CPU()
		leech := peertest.Libtorrent(t, "--torrent", tpath, "--dir", out, "--peer", ltAddr(seed).String(), "--utp-only", "--plaintext", ltBuffers)
		line, err := leech.WaitLine("DONE", 300*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var secs float64
		fmt.Sscanf(line, "DONE %f", &secs)
		cpu := seed.CPU() - cpu0 + leech.CPU()
		t.Logf("round %d: libtorrent -> libtorrent uTP: %.1f MB/s (%.2f s), CPU %.2f s", round, size/secs/1e6, secs, cpu.Seconds())
		seed.Stop()
		leech.Stop()
		os.RemoveAll(out)

		for _, mode := range []string{"uTP", "TCP"} {
			secs, cpu := oursToOurs(t, mi, filepath.Dir(data), mode == "TCP")
			t.Logf("round %d: ours -> ours %s: %.1f MB/s (%.2f s), CPU %.2f s", round, mode, size/secs.Seconds()/1e6, secs.Seconds(), cpu.Seconds())
		}

		// libtorrent (uTP only) seeding to us.
		seed = peertest.Libtorrent(t, "--torrent", tpath, "--dir", filepath.Dir(data), "--keep", "--seed-mode", "--utp-only", "--plaintext", ltBuffers)
		if _, err := seed.WaitLine("STATUS seeding", 60*time.Second); err != nil {
			t.Fatal(err)
		}
		n := startNode(t, engine.Config{Logf: func(string, ...any) {}})
		s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: n.dir}})
		if err != nil {
			t.Fatal(err)
		}
		n.srv.PreferUTP(ltAddr(seed))
		start, cpu0, lcpu0 := time.Now(), cpuTime(), seed.CPU()
		s.AddPeers(addrs(ltAddr(seed)), "test")
		waitState(t, s, engine.StateSeeding, 300*time.Second)
		took := time.Since(start)
		t.Logf("round %d: libtorrent -> ours uTP: %.1f MB/s (%.2f s), CPU ours %.2f s, libtorrent %.2f s", round, size/took.Seconds()/1e6,
			took.Seconds(), (cpuTime() - cpu0).Seconds(), (seed.CPU() - lcpu0).Seconds())
		seed.Stop()
		n.client.Remove(s.InfoHash(), true)
	}
}

// oursToOurs downloads mi from one node of ours to another, over uTP or
// TCP, and returns the time and the process's CPU time it took.
func oursToOurs(t *testing.T, mi *metainfo.MetaInfo, src string, tcp bool) (time.Duration, time.Duration) {
	quiet := engine.Config{Logf: func(string, ...any) {}}
	seed := startNodeWith(t, quiet, Config{NoUTP: tcp})
	ss, err := seed.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: src}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ss, engine.StateSeeding, 120*time.Second)
	leech := startNodeWith(t, quiet, Config{NoUTP: tcp})
	ls, err := leech.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: leech.dir}})
	if err != nil {
		t.Fatal(err)
	}
	if !tcp {
		leech.srv.PreferUTP(seed.addr())
	}
	start, cpu0 := time.Now(), cpuTime()
	ls.AddPeers(addrs(seed.addr()), "test")
	waitState(t, ls, engine.StateSeeding, 300*time.Second)
	took, cpu := time.Since(start), cpuTime()-cpu0
	if !tcp {
		overUTP(t, utpPackets(leech, false), mi.TotalLength)
		time.Sleep(20 * time.Millisecond) // Stats are as of the last tick
		ss, sd := seed.srv.mux.Stats()
		ls, ld := leech.srv.mux.Stats()
		t.Logf("seeder %+v, inbox drops %d; leecher %+v, inbox drops %d; socket buffers %v %v", ss, sd, ls, ld, seed.srv.udp.rcvBuf, seed.srv.udp.sndBuf)
	}
	leech.client.Remove(ls.InfoHash(), true)
	seed.client.Remove(ss.InfoHash(), false)
	return took, cpu
}

// The idle-connection measurements: a child process (this test binary)
// opens n connections to a node of ours, handshakes on each and then
// idles; the node's memory is measured before and after. Run each in a
// process of its own, so that one's garbage is not the other's baseline:
//
//	GTS_UTP_MEASURE=1 go test -run 'TestUTPMeasureIdleTCP' -v ./netio
//	GTS_UTP_MEASURE=1 go test -run 'TestUTPMeasureIdleUTP' -v ./netio
func TestUTPMeasureIdleTCP(t *testing.T) { measureIdle(t, "tcp") }
func TestUTPMeasureIdleUTP(t *testing.T) { measureIdle(t, "utp") }

const idleConns = 1000

func measureIdle(t *testing.T, mode string) {
	measuring(t)
	data := testData(t, "idle", []int{1 << 20})
	_, mi := makeTorrent(t, data, 256<<10)
	n := startNodeWith(t, engine.Config{MaxPeersPerTorrent: 2 * idleConns, MaxPeers: 4 * idleConns, Logf: func(string, ...any) {}}, Config{})
	s, err := n.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: filepath.Dir(data)}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, s, engine.StateSeeding, 60*time.Second)
	heap0, rss0 := memNow()
	cpu0 := cpuTime()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUTPIdleHelper$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("GTS_IDLE_HELPER=%s,%s,%s,%d", mode, n.addr(), hex.EncodeToString(mi.InfoHash[:]), idleConns))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				ready <- sc.Text()
			} else {
				fmt.Fprintln(os.Stderr, "helper:", sc.Text())
			}
		}
	}()
	select {
	case l := <-ready:
		t.Logf("helper: %s", l)
	case <-time.After(120 * time.Second):
		t.Fatal("the helper did not connect in time")
	}
	waitFor(t, "every connection attached", 60*time.Second, func() bool {
		c := 0
		for _, p := range s.Snapshot().Peers {
			if p.Connected {
				c++
			}
		}
		return c >= idleConns
	})
	cpu1 := cpuTime()
	time.Sleep(10 * time.Second) // idle: keep-alive timers only
	idleCPU := cpuTime() - cpu1
	heap1, rss1 := memNow()
	t.Logf("%s: %d idle connections: Go heap+stacks %+.1f KiB, RSS %+.1f KiB per connection; connecting took %.2f s CPU, idling 10 s took %.3f s CPU",
		mode, idleConns, float64(heap1-heap0)/1024/idleConns, float64(rss1-rss0)/1024/idleConns, (cpu1 - cpu0).Seconds(), idleCPU.Seconds())
}

// memNow is the Go heap and stacks in use after a collection, and the
// process's resident set.
func memNow() (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/statm")
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return int64(ms.HeapInuse + ms.StackInuse), res * int64(os.Getpagesize())
}

// TestUTPIdleHelper is the child of measureIdle: it opens the connections
// and idles until its stdin closes (two minutes at most).
func TestUTPIdleHelper(t *testing.T) {
	spec := os.Getenv("GTS_IDLE_HELPER")
	if spec == "" {
		t.Skip("the child of the idle measurements")
	}
	f := strings.Split(spec, ",")
	mode, addr := f[0], netip.MustParseAddrPort(f[1])
	var ih metainfo.Hash
	hex.Decode(ih[:], []byte(f[2]))
	count, _ := strconv.Atoi(f[3])
	greet := func() []byte {
		return greeting(wire.Handshake{Reserved: wire.DefaultReserved(false), InfoHash: ih, PeerID: wire.NewPeerID(rand.Reader)})
	}
	var keep []any
	switch mode {
	case "tcp":
		for i := 0; i < count; i++ {
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			c.Write(greet())
			keep = append(keep, c)
			if i%16 == 15 {
				time.Sleep(20 * time.Millisecond) // under the pending set's per-IP bound
			}
		}
	case "utp":
		// A socket per connection: the engine takes one connection per
		// address and torrent, and a real peer has an address of its own.
		errs := make(chan error, count)
		for i := 0; i < count; i++ {
			pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			keep = append(keep, pc)
			go func() { errs <- idleUTPPeer(pc, addr, greet()) }()
			if i%16 == 15 {
				for range 16 {
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	fmt.Printf("READY %d %s connections\n", count, mode)
	done := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	runtime.KeepAlive(keep)
}

// idleUTPPeer is the least a uTP peer does: it connects, sends the
// handshake, reports (nil) and then acknowledges each data packet, until
// its socket closes or three minutes pass.
func idleUTPPeer(pc *net.UDPConn, to netip.AddrPort, hs []byte) error {
	pc.SetDeadline(time.Now().Add(3 * time.Minute))
	var id [2]byte
	rand.Read(id[:])
	recvID := binary.BigEndian.Uint16(id[:])
	pkt := func(typ uint8, connID, seq, ack uint16, payload []byte) []byte {
		b := make([]byte, 20, 20+len(payload))
		b[0] = typ<<4 | 1
		binary.BigEndian.PutUint16(b[2:], connID)
		binary.BigEndian.PutUint32(b[12:], 1<<20)
		binary.BigEndian.PutUint16(b[16:], seq)
		binary.BigEndian.PutUint16(b[18:], ack)
		return append(b, payload...)
	}
	buf := make([]byte, 2048)
	if _, err := pc.WriteToUDPAddrPort(pkt(4, recvID, 1, 0, nil), to); err != nil {
		return err
	}
	n, _, err := pc.ReadFromUDPAddrPort(buf)
	if err != nil || n < 20 || buf[0]>>4 != 2 {
		return fmt.Errorf("no answer to the SYN: %v", err)
	}
	ack := binary.BigEndian.Uint16(buf[16:]) - 1
	if _, err := pc.WriteToUDPAddrPort(pkt(0, recvID+1, 2, ack, hs), to); err != nil {
		return err
	}
	go func() {
		for range 1_000_000 {
			n, _, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n >= 20 && buf[0]>>4 == 0 && binary.BigEndian.Uint16(buf[16:]) == ack+1 {
				ack++
				pc.WriteToUDPAddrPort(pkt(2, recvID+1, 3, ack, nil), to)
			}
		}
	}()
	return nil
}
