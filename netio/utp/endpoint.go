// Package utp is uTP (BEP 29): reliable, ordered byte streams over UDP
// datagrams, with LEDBAT congestion control (a window that yields to TCP
// once its packets start queueing, 100 ms of queueing delay at most) and
// selective ACKs. Its connections share one UDP socket with the DHT and the
// UDP tracker client: whoever reads the socket hands uTP datagrams to a
// Mux, which writes straight to the socket.
//
// Concurrency: a Mux runs every connection on one goroutine of its own,
// its loop: the datagrams, the timers (one ticker for all connections),
// and each connection's Handler callbacks. A Conn's stream methods belong
// to that goroutine; Do, Close and the Mux's exported methods are safe
// from any goroutine and hand their work to the loop. The protocol itself
// (endpoint, Conn) has no goroutine, socket or clock of its own, so tests
// drive it step by step with a fake clock and an in-memory network.
package utp

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"
)

var (
	// ErrTimeout: the peer stopped acknowledging (or never answered the
	// SYN).
	ErrTimeout = errors.New("utp: connection timed out")
	// ErrReset: the peer reset the connection.
	ErrReset = errors.New("utp: connection reset by peer")
	// ErrClosed: the connection or the Mux is closed.
	ErrClosed = errors.New("utp: closed")
)

// Handler owns one connection. Its methods run on the Mux's loop and must
// not block it.
type Handler interface {
	// Opened: the connection is established (a dialed one once the peer
	// answered, an accepted one at its SYN); the handler may write.
	Opened(c *Conn)
	// Readable: bytes arrived, or a Wake is due.
	Readable(c *Conn)
	// Closed, once, ends the handler's part: nil after Close, io.EOF when
	// the peer finished, another error otherwise. A dial that fails gets
	// Closed without Opened.
	Closed(c *Conn, err error)
}

// Config tunes a Mux. Zero values take the defaults noted.
type Config struct {
	// Accept decides about an inbound SYN, on the loop: the handler of the
	// new connection, or nil to ignore it (the peer's SYN then times out,
	// as when a TCP SYN queue is full).
	Accept func(from netip.AddrPort) Handler
	// RecvWindow bounds what one connection holds received and not yet
	// consumed (in order or not); it is also the window advertised.
	// Default 1 MiB: at loopback round trips (a millisecond under load)
	// that is over 500 MB/s, and an idle connection holds none of it.
	RecvWindow int
	// SynTimeouts: a dial gives up after this many unanswered SYNs' timeouts,
	// the first after 1 s, each doubling: default 2, 3 s.
	SynTimeouts int
}

func (c *Config) defaults() {
	if c.RecvWindow <= 0 {
		c.RecvWindow = 1 << 20
	}
	if c.SynTimeouts <= 0 {
		c.SynTimeouts = 2
	}
}

// Protocol constants.
const (
	// Payload bytes per packet: a 1500-byte Ethernet frame less the IP,
	// UDP and uTP headers, as libtorrent sends before probing the path MTU.
	mss4 = 1500 - 20 - 8 - headerLen
	mss6 = 1500 - 40 - 8 - headerLen
	// maxInflightPkts bounds the packets sent and not yet acknowledged:
	// under half the sequence space, and within the receiver's reorder
	// range.
	maxInflightPkts = 1000
	// target is LEDBAT's queueing delay: the window grows below it and
	// shrinks above it.
	target = 100 * time.Millisecond
	// gainPerRTT is the most the window grows in a round trip at zero
	// queueing delay, once out of slow start (libutp's and libtorrent's).
	gainPerRTT = 3000
	maxCwnd    = 8 << 20
	minRTO     = 500 * time.Millisecond
	maxRTO     = 30 * time.Second
	initRTO    = time.Second
	// maxTimeouts of an established connection's retransmissions in a
	// row (doubling from at least 0.5 s: a minute or more) end it.
	maxTimeouts = 7
	dupAckLimit = 3
	// keepAlive: an idle connection sends an ACK this often, so that NAT
	// mappings survive the peer protocol's two-minute keep-alives.
	keepAlive = 29 * time.Second
	// linger bounds how long a closed connection stays to get its FIN
	// acknowledged and to answer the peer's retransmissions.
	linger = 10 * time.Second
	// tickEvery is the loop's timer resolution: retransmission timeouts
	// are 0.5 s or more, so 10 ms is precise enough and idle cost is one
	// wake-up per tick, not one per connection.
	tickEvery  = 10 * time.Millisecond
	sweepEvery = time.Second
	// resetsPerSweep bounds the RESETs answering packets of unknown
	// connections, so that spoofed packets cannot aim us at a third party
	// at any rate.
	resetsPerSweep = 100
)

type connKey struct {
	addr netip.AddrPort
	id   uint16 // our receive id: the connection_id the peer's packets carry
}

// endpoint is the protocol for every connection on one socket. Owned by
// one goroutine (the Mux's loop, or a test).
type endpoint struct {
	cfg  Config
	send func(b []byte, to netip.AddrPort)
	// post runs a function on the owner goroutine; any goroutine may
	// call it (Conn.Do and Close do).
	post  func(func()) error
	clock func() time.Duration // monotonic
	now   time.Duration        // clock at the start of the current step
	conns map[connKey]*Conn
	rng   *rand.Rand
	busy  []*Conn // connections with timers running, ticked
	dirty []*Conn // to finish at the end of this round
	wakes []*Conn // Readable again next round
	buf   []byte  // scratch for control packets
	// resets left this sweep; lastSweep is when the last one ran.
	resets    int
	lastSweep time.Duration
	closed    bool // closeAll ran: dials fail at once
	stats     Stats
}

// Stats counts packets by fate. Owned by the loop; Mux.Stats copies it.
type Stats struct {
	Conns       int   // open or lingering
	PacketsIn   int64 // parsed datagrams
	PacketsOut  int64
	Resent      int64 // data packets sent again
	Invalid     int64 // datagrams that are no uTP packet
	Unknown     int64 // packets for no connection
	ResetsOut   int64
	WindowDrops int64 // data past the receive window
}

func newEndpoint(cfg Config, send func([]byte, netip.AddrPort), post func(func()) error, clock func() time.Duration) *endpoint {
	cfg.defaults()
	var seed [16]byte
	crand.Read(seed[:])
	return &endpoint{
		cfg: cfg, send: send, post: post, clock: clock, conns: map[connKey]*Conn{},
		rng:    rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:]), binary.LittleEndian.Uint64(seed[8:]))),
		buf:    make([]byte, 0, headerLen+2+maxSACK),
		resets: resetsPerSweep,
	}
}

// micros is the packet clock: microseconds, wrapping at 32 bits.
func (e *endpoint) micros() uint32 { return uint32(e.now / time.Microsecond) }

// receive handles one datagram. b is only borrowed.
func (e *endpoint) receive(b []byte, from netip.AddrPort) {
	e.now = e.clock()
	h, err := parse(b)
	if err != nil {
		e.stats.Invalid++
		return
	}
	e.stats.PacketsIn++
	if h.typ == stSyn {
		e.onSyn(h, from)
		return
	}
	c := e.conns[connKey{from, h.connID}]
	if c == nil && h.typ == stReset {
		// libutp resets with the id it sends with, ours for sending.
		c = e.conns[connKey{from, h.connID + 1}]
		if c == nil {
			c = e.conns[connKey{from, h.connID - 1}]
		}
		if c == nil || c.sendID != h.connID {
			return
		}
	}
	if c == nil {
		e.stats.Unknown++
		if h.typ != stReset {
			e.reset(from, h.connID, h.seq)
		}
		return
	}
	c.onPacket(&h)
}

// onSyn accepts a connection, or answers a repeated SYN again.
func (e *endpoint) onSyn(h header, from netip.AddrPort) {
	key := connKey{from, h.connID + 1}
	if c := e.conns[key]; c != nil {
		if c.state == stateConnected && c.sendID == h.connID && c.ackNr == h.seq {
			c.needAck = true
			c.markDirty()
		}
		return
	}
	if e.cfg.Accept == nil {
		return
	}
	hd := e.cfg.Accept(from)
	if hd == nil {
		return
	}
	c := e.newConn(from, key.id, h.connID, hd)
	c.state = stateConnected
	c.ackNr = h.seq
	c.seqNr = uint16(e.rng.Uint32())
	c.outStart = c.seqNr
	c.peerWnd = int(h.wnd)
	c.lastRecv = e.now
	c.replyMicro = e.micros() - h.ts
	c.synRecv = true
	// The ST_STATE answering the SYN carries the sequence number our
	// first data packet will have, and consumes none.
	c.sendState()
	c.h.Opened(c)
}

// dial starts a connection to addr: its SYN goes out now.
func (e *endpoint) dial(addr netip.AddrPort, hd Handler) *Conn {
	e.now = e.clock()
	var id uint16
	for tries := 0; ; tries++ {
		id = uint16(e.rng.Uint32())
		if e.conns[connKey{addr, id}] == nil && e.conns[connKey{addr, id + 1}] == nil || tries == 64 {
			break
		}
	}
	c := e.newConn(addr, id, id+1, hd)
	if e.closed {
		c.fail(ErrClosed)
		return c
	}
	c.state = stateSynSent
	c.seqNr = uint16(e.rng.Uint32())
	c.outStart = c.seqNr
	p := c.queuePacket(stSyn, nil)
	c.transmit(p)
	return c
}

func (e *endpoint) newConn(addr netip.AddrPort, recvID, sendID uint16, hd Handler) *Conn {
	mss := mss4
	if addr.Addr().Is6() {
		mss = mss6
	}
	c := &Conn{
		e: e, h: hd, addr: addr, recvID: recvID, sendID: sendID, mss: mss,
		cwnd: 2 * mss, ssthresh: maxCwnd, slowStart: true, rto: initRTO, peerWnd: mss,
		lastSend: e.now, lastRecv: e.now,
	}
	c.lastWnd = e.cfg.RecvWindow
	e.conns[connKey{addr, recvID}] = c
	e.stats.Conns = len(e.conns)
	return c
}

func (e *endpoint) remove(c *Conn) {
	if c.state == stateGone {
		return
	}
	c.state = stateGone
	c.dead.Store(true)
	if e.conns[connKey{c.addr, c.recvID}] == c {
		delete(e.conns, connKey{c.addr, c.recvID})
	}
	c.release()
	e.stats.Conns = len(e.conns)
}

// reset answers a packet of no connection, within the RESET budget.
func (e *endpoint) reset(to netip.AddrPort, connID, seq uint16) {
	if e.resets <= 0 {
		return
	}
	e.resets--
	e.stats.ResetsOut++
	b := e.buf[:headerLen]
	putHeader(b, stReset, false, connID, e.micros(), 0, 0, uint16(e.rng.Uint32()), seq)
	e.out(b, to)
}

func (e *endpoint) out(b []byte, to netip.AddrPort) {
	e.stats.PacketsOut++
	e.send(b, to)
}

// endRound finishes what this round's datagrams and tasks started: each
// touched connection hears of its new bytes, sends what its windows now
// allow, and acknowledges what arrived (one ACK per round, however many
// packets came).
func (e *endpoint) endRound() {
	for i := 0; i < len(e.dirty); i++ {
		c := e.dirty[i]
		c.isDirty = false
		c.finishRound()
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
}

// takeWakes marks the connections that asked for another turn readable
// and dirty for this round; false when none did.
func (e *endpoint) takeWakes() bool {
	if len(e.wakes) == 0 {
		return false
	}
	w := e.wakes
	e.wakes = nil
	for _, c := range w {
		c.wantWake = false
		if c.state == stateConnected && !c.reported {
			c.readable = true
			c.markDirty()
		}
	}
	return true
}

// tick runs the timers of the busy connections, and once a second looks
// at every connection (keep-alives, lingering ones, idle buffers).
func (e *endpoint) tick() {
	e.now = e.clock()
	kept := e.busy[:0]
	for _, c := range e.busy {
		if c.state != stateGone {
			c.tick()
		}
		if c.state != stateGone && c.hasTimers() {
			kept = append(kept, c)
		} else {
			c.isBusy = false
		}
	}
	clear(e.busy[len(kept):])
	e.busy = kept
	if e.now-e.lastSweep >= sweepEvery {
		e.lastSweep = e.now
		e.resets = resetsPerSweep
		for _, c := range e.conns {
			c.sweep()
		}
	}
	e.endRound()
}

// closeAll ends every connection, for Mux.Close.
func (e *endpoint) closeAll() {
	e.now = e.clock()
	e.closed = true
	for _, c := range e.conns {
		c.fail(ErrClosed)
	}
	e.endRound()
}
