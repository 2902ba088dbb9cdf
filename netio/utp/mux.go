package utp

import (
	"net/netip"
	"sync"
	"time"
)

// Writer is the socket a Mux sends on (the shared UDP socket).
type Writer interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Mux runs the uTP connections of one socket on its loop goroutine. The
// socket's reader hands it datagrams (Deliver); it writes to the socket
// itself. Exported methods are safe from any goroutine.
type Mux struct {
	w     Writer
	e     *endpoint // the loop's
	start time.Time

	mu      sync.Mutex
	inbox   []datagram
	tasks   []func()
	closed  bool
	stats   Stats
	dropped int64

	notify chan struct{} // one pending wake-up of the loop
	quit   chan struct{}
	done   chan struct{}
}

type datagram struct {
	b    *[]byte
	from netip.AddrPort
}

// maxInbox bounds the datagrams waiting for the loop: at 100 MB/s about
// 60 ms of traffic. Past it they are dropped, as a full socket buffer
// would, and the senders' congestion control backs off.
const maxInbox = 4096

// bufPool holds the inbox's datagram copies; 2 KiB fits every packet we
// or libtorrent send.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// NewMux starts a Mux writing to w.
func NewMux(w Writer, cfg Config) *Mux {
	m := &Mux{w: w, start: time.Now(), notify: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	m.e = newEndpoint(cfg, m.send, m.post, m.clock)
	go m.loop()
	return m
}

func (m *Mux) clock() time.Duration { return time.Since(m.start) }

func (m *Mux) send(b []byte, to netip.AddrPort) {
	// A failed send is a lost packet: retransmission deals with it.
	m.w.WriteToUDPAddrPort(b, to)
}

// Deliver queues a datagram read from the socket, copying it; false when
// the Mux is behind or closed and drops it. Called by the socket's
// reader; never blocks.
func (m *Mux) Deliver(b []byte, from netip.AddrPort) bool {
	var p *[]byte
	if len(b) <= 2048 {
		p = bufPool.Get().(*[]byte)
		*p = append((*p)[:0], b...)
	} else {
		c := append([]byte(nil), b...)
		p = &c
	}
	m.mu.Lock()
	if m.closed || len(m.inbox) >= maxInbox {
		m.dropped++
		m.mu.Unlock()
		bufPool.Put(p)
		return false
	}
	m.inbox = append(m.inbox, datagram{p, from})
	first := len(m.inbox) == 1
	m.mu.Unlock()
	if first {
		m.wake()
	}
	return true
}

func (m *Mux) wake() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// post runs f on the loop; ErrClosed once the Mux is closed.
func (m *Mux) post(f func()) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.tasks = append(m.tasks, f)
	first := len(m.tasks) == 1
	m.mu.Unlock()
	if first {
		m.wake()
	}
	return nil
}

// Dial connects to addr: h.Opened once the peer answers, or h.Closed
// with ErrTimeout after Config.SynTimeouts. An error means h will never
// hear of it (the Mux is closed).
func (m *Mux) Dial(addr netip.AddrPort, h Handler) error {
	return m.post(func() { m.e.dial(addr, h) })
}

// Stats are the loop's counters as of its last tick, and the datagrams
// Deliver dropped.
func (m *Mux) Stats() (s Stats, dropped int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats, m.dropped
}

// Close ends every connection (their handlers get Closed(ErrClosed)) and
// stops the loop. Idempotent.
func (m *Mux) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.done
		return
	}
	m.closed = true
	m.mu.Unlock()
	close(m.quit)
	<-m.done
}

// maxRounds bounds the rounds the loop runs between two looks at its
// ticker, so that a steady stream of datagrams cannot starve the timers.
const maxRounds = 64

func (m *Mux) loop() {
	defer close(m.done)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	var in []datagram
	var tasks []func()
	for {
		select {
		case <-m.notify:
		case <-t.C:
			m.e.tick()
			m.mu.Lock()
			m.stats = m.e.stats
			m.mu.Unlock()
		case <-m.quit:
			m.e.closeAll()
			m.mu.Lock()
			tasks, m.tasks = m.tasks, nil
			for _, d := range m.inbox {
				bufPool.Put(d.b)
			}
			m.inbox = nil
			m.mu.Unlock()
			// Do's callbacks learn that their connection is closed.
			for _, f := range tasks {
				f()
			}
			return
		}
		for round := 0; ; round++ {
			if round == maxRounds {
				m.wake()
				break
			}
			m.mu.Lock()
			in, m.inbox = m.inbox, in[:0]
			tasks, m.tasks = m.tasks, tasks[:0]
			m.mu.Unlock()
			woke := m.e.takeWakes()
			if len(in) == 0 && len(tasks) == 0 && !woke {
				break
			}
			for i := range in {
				m.e.receive(*in[i].b, in[i].from)
				if cap(*in[i].b) == 2048 {
					bufPool.Put(in[i].b)
				}
				in[i] = datagram{}
			}
			m.e.now = m.clock()
			for i, f := range tasks {
				f()
				tasks[i] = nil
			}
			m.e.endRound()
		}
	}
}
