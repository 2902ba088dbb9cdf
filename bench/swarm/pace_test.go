package swarm

import (
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"gotorrentserver/engine/wire"
)

// The timing tests assert the "not more than" side of a cap and the "not
// earlier than" side of a delay tightly (the token bucket and the queues
// enforce them whatever the load), and the other side loosely: a loaded
// 2-core machine can only make things slower.

func TestBucketKeepsItsRate(t *testing.T) {
	b := newBucket(1<<20, 16<<10, 0)
	var took int64
	// 2 s in 1 ms steps, taking 16 KiB blocks whenever allowed.
	for now := time.Duration(0); now <= 2*time.Second; now += time.Millisecond {
		b.refill(now)
		for b.take(16 << 10) {
			took += 16 << 10
		}
		if r := b.ready(16<<10, now); r < now || r > now+20*time.Millisecond {
			t.Fatalf("at %v the next block is ready at %v", now, r)
		}
	}
	if max := int64(2<<20 + b.burst); took > max || took < 2<<20-16<<10 {
		t.Errorf("took %d bytes in 2 s at 1 MiB/s (burst %.0f)", took, b.burst)
	}
	// A block above the burst passes from a full bucket, into debt.
	b = newBucket(100_000, 1000, 0)
	if !b.take(64<<10) || b.take(1) {
		t.Error("a full bucket refused a large block, or allowed more at once")
	}
	if r := b.ready(1000, 0); r < 600*time.Millisecond {
		t.Errorf("after a 64 KiB block at 100 KB/s the next 1000 bytes are ready at %v", r)
	}
	if b := newBucket(0, 1, 0); !b.take(1 << 30) {
		t.Error("rate 0 is unlimited")
	}
}

func TestJainAndShares(t *testing.T) {
	if j := Jain([]float64{3, 3, 3}); math.Abs(j-1) > 1e-9 {
		t.Errorf("equal shares: %v", j)
	}
	if j := Jain([]float64{4, 0, 0, 0}); math.Abs(j-0.25) > 1e-9 {
		t.Errorf("one of four has all: %v", j)
	}
	if !math.IsNaN(Jain(nil)) || !math.IsNaN(Jain([]float64{0, 0})) {
		t.Error("no data should be NaN")
	}
	s := time.Second
	from := ConnSnapshot{At: 10 * s, Conns: []ConnSample{
		{ID: 1, Start: 1 * s, Open: true, Bytes: 100},
		{ID: 2, Start: 2 * s, Open: true, Bytes: 50},
	}}
	to := ConnSnapshot{At: 20 * s, Conns: []ConnSample{
		{ID: 1, Start: 1 * s, Open: true, Bytes: 1100},           // whole window
		{ID: 2, Start: 2 * s, End: 15 * s, Bytes: 550},           // closed half way
		{ID: 3, Start: 18 * s, Torrent: 1, Open: true, Bytes: 7}, // opened late
		{ID: 4, Start: 5 * s, End: 10 * s, Bytes: 9},             // closed as it began
	}}
	got := map[uint64]ConnShare{}
	for _, c := range Shares(from, to) {
		got[c.ID] = c
	}
	want := map[uint64]ConnShare{1: {1, 0, 1000, 10}, 2: {2, 0, 500, 5}, 3: {3, 1, 7, 2}}
	if len(got) != len(want) {
		t.Errorf("shares %v, want %v", got, want)
	}
	for id, w := range want {
		if g := got[id]; g.Bytes != w.Bytes || g.Torrent != w.Torrent || math.Abs(g.Seconds-w.Seconds) > 1e-9 {
			t.Errorf("connection %d: %+v, want %+v", id, g, w)
		}
	}
}

// window measures a swarm for d once every connection is handshaken.
func window(t *testing.T, s *Swarm, peers int, d time.Duration) (Stats, Stats, []ConnShare) {
	t.Helper()
	waitUntil(t, "connections handshaken", 10*time.Second, func() bool { return s.Stats().Handshaken == int64(peers) })
	time.Sleep(300 * time.Millisecond) // past the first burst
	a, ca := s.Stats(), s.Conns(s.Elapsed())
	time.Sleep(d)
	b, cb := s.Stats(), s.Conns(ca.At)
	return a, b, Shares(ca, cb)
}

// A capped leecher counts no more than its cap from a seeder that answers
// at once, and asks for no more than it counts (plus its pipeline): the
// seeder sees a peer that takes its cap.
func TestCappedLeecherTakesItsCap(t *testing.T) {
	tor, _ := testTorrent(t, 21, 8<<20)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", Duration: 30 * time.Second})
	const peers, limit = 3, 1 << 20
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: peers,
		RateCap: limit, Duration: 30 * time.Second})
	a, b, shares := window(t, leechers, peers, 2*time.Second)
	secs := b.At.Sub(a.At).Seconds()
	for i := range b.PerConn {
		rate := float64(b.PerConn[i]-a.PerConn[i]) / secs
		if rate > 1.1*limit || rate < 0.5*limit {
			t.Errorf("connection %d: %.0f B/s at a cap of %d", i, rate, limit)
		}
	}
	t.Logf("pipeline %d; per connection over %.2f s: %v bytes", leechers.cfg.Pipeline, secs, shares)
	var sum int64
	for _, c := range shares {
		sum += c.Bytes
		if c.Seconds < secs-0.1 || c.Seconds > secs+0.1 {
			t.Errorf("connection %d open %.2f s of a %.2f s window", c.ID, c.Seconds, secs)
		}
	}
	// The snapshots and the counters are read a moment apart: a few blocks
	// may be in one and not the other.
	if d := sum - (b.Down - a.Down); len(shares) != peers || d > 4*16<<10 || d < -4*16<<10 {
		t.Errorf("%d shares adding up to %d bytes, the swarm counted %d", len(shares), sum, b.Down-a.Down)
	}
	ss := seeders.Stats()
	pipeline := int64(leechers.cfg.Pipeline) * int64(leechers.cfg.BlockLen)
	if ahead := ss.Up - leechers.Stats().Down; ahead > peers*pipeline {
		t.Errorf("the seeder sent %d bytes more than the leechers counted, above %d pipelines of %d", ahead, peers, pipeline)
	}
	if leechers.cfg.Pipeline >= 64 || leechers.cfg.Pipeline < 4 {
		t.Errorf("pipeline %d for 1 MiB/s and no RTT", leechers.cfg.Pipeline)
	}
}

// A capped seeder sends no more than its cap to a leecher that would take
// everything.
func TestCappedSeederSendsItsCap(t *testing.T) {
	tor, _ := testTorrent(t, 22, 8<<20)
	const peers, limit = 2, 1 << 20
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", RateCap: limit,
		RTT: 20 * time.Millisecond, Duration: 30 * time.Second})
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: peers,
		Pipeline: 128, Duration: 30 * time.Second})
	a, b, _ := window(t, leechers, peers, 2*time.Second)
	secs := b.At.Sub(a.At).Seconds()
	for i := range b.PerConn {
		if rate := float64(b.PerConn[i]-a.PerConn[i]) / secs; rate > 1.1*limit || rate < 0.5*limit {
			t.Errorf("connection %d: %.0f B/s from seeders capped at %d", i, rate, limit)
		}
	}
}

// fakeSeeder accepts one connection, unchokes, and answers each request
// with its block at once, recording when each request arrived and when
// each answer left. Requests are read one frame at a time.
type fakeSeeder struct {
	ln       net.Listener
	requests chan time.Time
	answered chan time.Time
}

func startFakeSeeder(t *testing.T, tor Torrent) *fakeSeeder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSeeder{ln: ln, requests: make(chan time.Time, 1024), answered: make(chan time.Time, 1024)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetNoDelay(true)
		if _, err := io.ReadFull(c, make([]byte, wire.HandshakeLen)); err != nil {
			return
		}
		out := wire.AppendHandshake(nil, wire.Handshake{InfoHash: tor.Meta.InfoHash})
		if _, err := c.Write(wire.AppendSimple(out, wire.Unchoke)); err != nil {
			return
		}
		for {
			hdr := make([]byte, 4)
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			if len(body) != 13 || wire.Type(body[0]) != wire.Request {
				continue
			}
			f.requests <- time.Now()
			index, begin, length := binary.BigEndian.Uint32(body[1:]), binary.BigEndian.Uint32(body[5:]), binary.BigEndian.Uint32(body[9:])
			block := make([]byte, length)
			tor.Payload.ReadAt(block, int64(index)*tor.Meta.PieceLength+int64(begin))
			if _, err := c.Write(wire.AppendPiece(nil, index, begin, block)); err != nil {
				return
			}
			f.answered <- time.Now()
		}
	}()
	return f
}

func next(t *testing.T, ch chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
	return time.Time{}
}

// With one request outstanding, a leecher's next request reaches the
// seeder a whole RTT after the seeder answered the last: RTT/2 before the
// block counts, RTT/2 before the request it triggers leaves.
func TestLeecherRTTSpacesRequests(t *testing.T) {
	tor, _ := testTorrent(t, 23, 1<<20)
	f := startFakeSeeder(t, tor)
	const rtt = 200 * time.Millisecond
	startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: netip.MustParseAddrPort(f.ln.Addr().String()),
		Pipeline: 1, RTT: rtt, RedialDelay: -1, Duration: 20 * time.Second})
	next(t, f.requests, "first request")
	for i := range 3 {
		sent := next(t, f.answered, "answer")
		got := next(t, f.requests, "request").Sub(sent)
		if got < rtt-pacerTick || got > rtt+time.Second {
			t.Errorf("request %d came %v after the answer, RTT %v", i+2, got, rtt)
		}
	}
}

// A seeder with an RTT answers a request no sooner than RTT after it
// arrived.
func TestSeederRTTDelaysAnswers(t *testing.T) {
	tor, mi := testTorrent(t, 24, 1<<20)
	const rtt = 200 * time.Millisecond
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", RTT: rtt,
		Duration: 20 * time.Second})
	c, err := net.Dial("tcp", seeders.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	out := wire.AppendHandshake(nil, wire.Handshake{InfoHash: mi.InfoHash})
	if _, err := c.Write(wire.AppendSimple(out, wire.Interested)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, wire.HandshakeLen)); err != nil {
		t.Fatal(err)
	}
	frame := func() []byte {
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	for {
		if b := frame(); len(b) == 1 && wire.Type(b[0]) == wire.Unchoke {
			break
		}
	}
	for i := range 3 {
		sent := time.Now()
		if _, err := c.Write(wire.AppendRequest(nil, uint32(i), 0, 16<<10)); err != nil {
			t.Fatal(err)
		}
		b := frame()
		got := time.Since(sent)
		if wire.Type(b[0]) != wire.Piece || len(b) != 9+16<<10 {
			t.Fatalf("answer of type %d, %d bytes", b[0], len(b))
		}
		if got < rtt-pacerTick || got > rtt+time.Second {
			t.Errorf("answer %d came %v after its request, RTT %v", i+1, got, rtt)
		}
	}
}

// Churn, caps and RTT together: connections come and go, each capped, and
// the per-connection accounting (closed ones included) adds up to what the
// swarm counted in the window.
func TestChurnWithCapsAndRTT(t *testing.T) {
	tor, _ := testTorrent(t, 25, 8<<20)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", Duration: 30 * time.Second})
	const peers, limit = 20, 256 << 10
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: peers,
		RateCap: limit, RTT: 50 * time.Millisecond, Churn: 10, Duration: 30 * time.Second})
	waitUntil(t, "connections handshaken", 10*time.Second, func() bool { return leechers.Stats().Handshaken >= peers-2 })
	a, ca := leechers.Stats(), leechers.Conns(leechers.Elapsed())
	time.Sleep(2 * time.Second)
	// Bytes counted between the two reads of b are in one and not the
	// other: read the swarm after it stopped.
	leechers.Stop()
	b, cb := leechers.Stats(), leechers.Conns(ca.At)
	shares := Shares(ca, cb)
	t.Logf("%d connections in the window, %d bytes; churned %d", len(shares), b.Down-a.Down, b.Churned-a.Churned)
	var sum int64
	var open float64
	for _, c := range shares {
		sum += c.Bytes
		open += c.Seconds
		if rate := float64(c.Bytes) / c.Seconds; c.Seconds > 0.5 && rate > 1.1*limit+float64(limit)/20/c.Seconds {
			t.Errorf("connection %d: %.0f B/s over %.2f s at a cap of %d", c.ID, rate, c.Seconds, limit)
		}
	}
	// a and ca are read a moment apart: a few blocks may be in one only.
	if d := sum - (b.Down - a.Down); d > 4*16<<10 || d < -4*16<<10 {
		t.Errorf("shares add up to %d bytes, the swarm counted %d", sum, b.Down-a.Down)
	}
	if b.Churned-a.Churned < 10 || len(shares) <= peers {
		t.Errorf("churned %d in 2 s at 10/s, %d connections in the window", b.Churned-a.Churned, len(shares))
	}
	if demand := open * limit; float64(sum) > 1.05*demand || float64(sum) < 0.3*demand {
		t.Errorf("%d bytes in the window against a demand of %.0f (%.1f connection-seconds)", sum, demand, open)
	}
	if b.PerTorrent[0] != b.Down {
		t.Errorf("per-torrent bytes %v, down %d", b.PerTorrent, b.Down)
	}
}

// The queues compact as they drain: what peek returned must stay what pop
// takes (a pointer into the queue once served the wrong block after a
// compaction).
func TestFifoKeepsOrderAcrossCompaction(t *testing.T) {
	var q fifo
	next, want := 0, 0
	for round := range 50 {
		for range 1 + round%7*20 {
			q.push(timed{key: uint64(next)})
			next++
		}
		for range round % 5 * 25 {
			if q.len() == 0 {
				break
			}
			head := q.peek()
			if got := q.pop(); got != head || got.key != uint64(want) {
				t.Fatalf("popped %d (peeked %d), want %d", got.key, head.key, want)
			}
			want++
		}
	}
	if q.len() != next-want {
		t.Errorf("%d left, want %d", q.len(), next-want)
	}
}

// Deep pipelines against a capped seeder: every block that arrives is one
// that was asked for, and every piece verifies.
func TestCappedSeederAnswersWhatWasAsked(t *testing.T) {
	tor, mi := testTorrent(t, 26, 4<<20)
	seeders := startSwarm(t, Config{Mode: Seed, Torrents: []Torrent{tor}, Listen: "127.0.0.1:0", RateCap: 8 << 20,
		RTT: 10 * time.Millisecond, Duration: 30 * time.Second})
	// 1,024 blocks per connection: its queues compact several times.
	want := 4 * mi.TotalLength
	leechers := startSwarm(t, Config{Mode: Leech, Torrents: []Torrent{tor}, Target: seeders.Addr(), Peers: 2,
		Pipeline: 256, Verify: true, MaxBytes: want, Duration: 30 * time.Second})
	st := leechers.Wait()
	if st.Down < want || st.Unexpected != 0 || st.PiecesBad != 0 || st.ProtocolErrors != 0 {
		t.Errorf("%d of %d bytes, %d unexpected blocks, %d bad pieces, %d protocol errors (%s)",
			st.Down, want, st.Unexpected, st.PiecesBad, st.ProtocolErrors, st.LastError)
	}
}
