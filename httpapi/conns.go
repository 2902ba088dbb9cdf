package httpapi

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Connection limits. fasthttp serves at most `concurrency` connections and
// answers the next one itself, with a text/plain 503; before these limits a
// thousand idle or half-open connections, needing no token, locked every
// client out that way for minutes. The tracker below keeps the API's
// connections under that number and decides who goes when it is full.
const (
	// DefaultMaxConns is Config.MaxConns when it is zero: fasthttp's limit
	// less connHeadroom.
	DefaultMaxConns = concurrency - connHeadroom
	// DefaultHeaderTimeout is Config.HeaderTimeout when it is zero. A
	// request's headers are one packet for any real client, even over a
	// slow link; a connection silent for 5 s is holding a slot, not
	// making a request.
	DefaultHeaderTimeout = 5 * time.Second

	// connHeadroom is what MaxConns leaves of fasthttp's limit for
	// connections that are closed but still hold a fasthttp goroutine:
	// evicted ones (at most maxEvicting) and ones between their Close and
	// the worker's release, a few instructions apart.
	connHeadroom = 128
	// maxEvicting bounds connections the tracker has closed whose
	// goroutines have not noticed yet. Admission waits up to evictWait
	// for them before answering 503.
	maxEvicting = 64
	evictWait   = 100 * time.Millisecond

	// minSilentAge is how long a connection must have waited without
	// sending its headers before the unauthenticated caps evict it (see
	// victim); the total cap does not wait.
	minSilentAge = 250 * time.Millisecond

	// busyRetryAfter is the Retry-After, in seconds, of the 503 sent when
	// every slot is taken by clients that showed the token.
	busyRetryAfter = 5
	// maxRefusing bounds the goroutines answering that 503; past it the
	// answer is written from the accept loop and the socket closed at once.
	maxRefusing = 64
	// refuseLinger bounds how long a refused connection is drained after
	// its 503, so the client's request, already sent, does not turn the
	// close into a reset that destroys the answer.
	refuseLinger = 500 * time.Millisecond
	// lingerTime bounds how long a refused upload is drained before closing.
	lingerTime = 2 * time.Second
	// unauthLinger bounds what is drained after a 401. A client reads an
	// early answer while it uploads (curl and Go's client do), so the
	// answer is safe once the bytes in flight are read. Draining whole
	// bodies, as after a 413 to a token holder, turned 100 uploads
	// without the token into a gigabyte of reads, and the real client
	// waited 1.3 s behind them in the race-enabled test.
	unauthLinger = 1 << 20
)

// ErrBadLimits reports connection limits out of range in Config.
var ErrBadLimits = errors.New("httpapi: connection limits out of range")

// busyAnswer is the 503 written on the raw connection when the server is
// full; fasthttp never sees these connections.
var busyAnswer = func() []byte {
	body := `{"error":"too many API connections; retry later"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Server: " + serverName + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Retry-After: " + strconv.Itoa(busyRetryAfter) + "\r\n" +
		"Connection: close\r\n\r\n" + body)
}()

// connLimits are Config's connection limits with defaults applied.
type connLimits struct {
	maxConns         int
	maxUnproven      int
	maxUnprovenPerIP int
	headerTimeout    time.Duration
	uploadLinger     int64 // drained at most after a 413
}

// resolveLimits applies the defaults to cfg's limits and checks them.
func resolveLimits(cfg Config) (connLimits, error) {
	l := connLimits{
		maxConns:         cfg.MaxConns,
		maxUnproven:      cfg.MaxUnprovenConns,
		maxUnprovenPerIP: cfg.MaxUnprovenConnsPerIP,
		headerTimeout:    cfg.HeaderTimeout,
		uploadLinger:     4*int64(cfg.MaxBody) + 1<<20,
	}
	if l.maxConns < 0 || l.maxUnproven < 0 || l.maxUnprovenPerIP < 0 || l.headerTimeout < 0 {
		return l, fmt.Errorf("%w: negative", ErrBadLimits)
	}
	if l.maxConns == 0 {
		l.maxConns = DefaultMaxConns
	}
	if l.maxConns > DefaultMaxConns {
		return l, fmt.Errorf("%w: MaxConns %d over %d", ErrBadLimits, l.maxConns, DefaultMaxConns)
	}
	if l.maxUnproven == 0 {
		l.maxUnproven = max(l.maxConns/8, 1)
	}
	if l.maxUnprovenPerIP == 0 {
		l.maxUnprovenPerIP = max(l.maxUnproven/8, 1)
	}
	if l.maxUnproven > l.maxConns || l.maxUnprovenPerIP > l.maxUnproven {
		return l, fmt.Errorf("%w: want MaxUnprovenConnsPerIP %d <= MaxUnprovenConns %d <= MaxConns %d",
			ErrBadLimits, l.maxUnprovenPerIP, l.maxUnproven, l.maxConns)
	}
	if l.headerTimeout == 0 {
		l.headerTimeout = DefaultHeaderTimeout
	}
	return l, nil
}

// connTracker admits, counts and evicts the API's connections. A
// connection is unproven until one of its requests carries the token.
// Unproven connections are capped globally and per source address; past a
// cap the oldest one goes instead of the newcomer, so a real client, which
// also starts unproven, always gets in however many connections a flood
// holds, even from the same address. Proven connections are never closed
// here. Safe for concurrent use: mu guards the lists, the counts and each
// connection's list elements and state.
type connTracker struct {
	lim  connLimits
	logf func(string, ...any)
	done chan struct{} // closed by stop

	refusing atomic.Int32 // goroutines answering busyAnswer

	mu       sync.Mutex
	live     int                       // admitted and not closed by the tracker
	evicting int                       // closed by the tracker, not yet by fasthttp
	unproven list.List                 // *trackedConn, oldest first
	byIP     map[netip.Addr]*list.List // the same, per source
	stopped  bool
	lastLog  time.Time // of a refusal
	stats    connStats
}

// connStats counts the tracker's interventions, for logs and tests.
type connStats struct {
	evicted, reaped, refused int
}

// Connection states, guarded by connTracker.mu.
const (
	connLive = iota
	connEvicting
	connGone
)

func newConnTracker(lim connLimits, logf func(string, ...any)) *connTracker {
	return &connTracker{lim: lim, logf: logf, done: make(chan struct{}), byIP: make(map[netip.Addr]*list.List)}
}

// trackedConn is an accepted API connection. Read runs only on the
// connection's goroutine; the flags are read by the tracker from others.
type trackedConn struct {
	net.Conn
	t        *connTracker
	ip       netip.Addr
	accepted time.Time

	// Guarded by t.mu.
	state        int
	elem, ipElem *list.Element // in t.unproven and t.byIP while unproven

	proven     atomic.Bool
	headerSeen atomic.Bool  // the first request's headers have arrived
	closing    atomic.Bool  // Close has started: its exchange is over
	linger     atomic.Int64 // bytes to drain on Close (see markLinger)
	// streaming: an /events stream is being written. The connection is
	// proven and busy for as long as it lasts, however long no request
	// comes: nothing may take it for idle.
	streaming atomic.Bool
	scan      headerEnd // only the reading goroutine
	closeOnce sync.Once
}

// sourceKey groups connections by source: the address, or for IPv6 its
// /64, which one host usually owns whole.
func sourceKey(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// admit registers c, evicting what the caps require, or answers 503 and
// returns nil when every slot is held by proven connections.
func (t *connTracker) admit(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, t: t, ip: sourceKey(c.RemoteAddr()), accepted: time.Now()}
	var victims [3]*trackedConn
	n := 0
	deadline := tc.accepted.Add(evictWait)
	t.mu.Lock()
	// Evicted connections still hold a fasthttp goroutine until theirs
	// notices; waiting for them keeps fasthttp under its limit.
	for t.evicting >= maxEvicting && !t.stopped && time.Now().Before(deadline) {
		t.mu.Unlock()
		time.Sleep(time.Millisecond)
		t.mu.Lock()
	}
	if t.stopped {
		t.mu.Unlock()
		c.Close()
		return nil
	}
	refuse := t.evicting >= maxEvicting
	if !refuse {
		if l := t.byIP[tc.ip]; l != nil && l.Len() >= t.lim.maxUnprovenPerIP {
			if v := victim(l, minSilentAge); v != nil {
				victims[n] = t.evictLocked(v)
				n++
			}
		}
		if t.unproven.Len() >= t.lim.maxUnproven {
			if v := victim(&t.unproven, minSilentAge); v != nil {
				victims[n] = t.evictLocked(v)
				n++
			}
		}
		if t.live >= t.lim.maxConns {
			// Full: the oldest silent one goes whatever its age, or a
			// flood opened faster than minSilentAge would lock the API.
			if v := victim(&t.unproven, 0); v != nil {
				victims[n] = t.evictLocked(v)
				n++
			} else {
				refuse = true
			}
		}
	}
	if refuse {
		t.stats.refused++
		logNow := time.Since(t.lastLog) > time.Minute
		if logNow {
			t.lastLog = time.Now()
		}
		live := t.live
		t.mu.Unlock()
		if logNow {
			t.logf("httpapi: %d API connections hold every slot; refusing new ones with 503 (logged once a minute)", live)
		}
		t.refuse(c)
		return nil
	}
	t.stats.evicted += n
	tc.elem = t.unproven.PushBack(tc)
	l := t.byIP[tc.ip]
	if l == nil {
		l = list.New()
		t.byIP[tc.ip] = l
	}
	tc.ipElem = l.PushBack(tc)
	t.live++
	t.mu.Unlock()
	for _, v := range victims[:n] {
		v.Conn.Close()
	}
	return tc
}

// victim picks whom to evict from l (unproven connections, oldest first):
// the oldest whose exchange is over (draining after its answer), else the
// oldest still waiting for its headers if it has waited minAge, else
// nobody. A real client sends its headers right after connecting, but 16
// of them opening at once from one address outnumber the per-address cap
// before any has: evicting the youngest silent ones for that cap lost one
// request in 100,000 in bench e. A connection whose
// headers have arrived is in the middle of a request: without the token
// it is answered 401 and closed within microseconds, with it it is about
// to be proven. Evicting it only ever hurt real clients (a dashboard with
// 16 parallel requests lost one in 96,000 when its fresh connections
// outnumbered the per-address cap), so the caps may be exceeded by such
// connections until they resolve; the total cap still holds.
func victim(l *list.List, minAge time.Duration) *trackedConn {
	var waiting *trackedConn
	young := time.Now().Add(-minAge)
	for e := l.Front(); e != nil; e = e.Next() {
		c := e.Value.(*trackedConn)
		if c.closing.Load() {
			return c
		}
		if waiting == nil && !c.headerSeen.Load() && c.accepted.Before(young) {
			waiting = c
		}
	}
	return waiting
}

// evictLocked takes c out of the caps; the caller closes its socket after
// unlocking, which ends whatever fasthttp was doing with it.
func (t *connTracker) evictLocked(c *trackedConn) *trackedConn {
	t.unlinkLocked(c)
	c.state = connEvicting
	t.live--
	t.evicting++
	return c
}

func (t *connTracker) unlinkLocked(c *trackedConn) {
	if c.elem == nil {
		return
	}
	t.unproven.Remove(c.elem)
	if l := t.byIP[c.ip]; l != nil {
		l.Remove(c.ipElem)
		if l.Len() == 0 {
			delete(t.byIP, c.ip)
		}
	}
	c.elem, c.ipElem = nil, nil
}

// prove marks c as carrying the token: it no longer counts against the
// unproven caps and is never evicted.
func (t *connTracker) prove(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.state == connLive {
		t.unlinkLocked(c)
		c.proven.Store(true)
	}
}

// closed forgets c once fasthttp has closed it.
func (t *connTracker) closed(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unlinkLocked(c)
	switch c.state {
	case connLive:
		t.live--
	case connEvicting:
		t.evicting--
	}
	c.state = connGone
}

// reap closes unproven connections whose first request's headers have not
// arrived within the header timeout. The list is in accept order, so the
// walk stops at the first connection still within it.
func (t *connTracker) reap(now time.Time) {
	var victims []*trackedConn
	t.mu.Lock()
	for e := t.unproven.Front(); e != nil; {
		c := e.Value.(*trackedConn)
		e = e.Next()
		if now.Sub(c.accepted) < t.lim.headerTimeout {
			break
		}
		if !c.headerSeen.Load() {
			victims = append(victims, t.evictLocked(c))
		}
	}
	t.stats.reaped += len(victims)
	t.mu.Unlock()
	for _, c := range victims {
		c.Conn.Close()
	}
}

// run reaps until stop, often enough that a connection outlives the header
// timeout by at most a quarter of it.
func (t *connTracker) run() {
	tick := time.NewTicker(min(max(t.lim.headerTimeout/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case now := <-tick.C:
			t.reap(now)
		}
	}
}

// stop ends the reaper and closes connections still waiting for their
// first headers: Shutdown would otherwise wait for them, as for requests.
func (t *connTracker) stop() {
	var victims []*trackedConn
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	close(t.done)
	for e := t.unproven.Front(); e != nil; {
		c := e.Value.(*trackedConn)
		e = e.Next()
		if !c.headerSeen.Load() {
			victims = append(victims, t.evictLocked(c))
		}
	}
	t.mu.Unlock()
	for _, c := range victims {
		c.Conn.Close()
	}
}

// snapshot returns the counts, for tests and logs.
func (t *connTracker) snapshot() (live, unproven int, st connStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live, t.unproven.Len(), t.stats
}

// refuse answers busyAnswer on a connection fasthttp will never see. The
// drain runs on its own goroutine so the accept loop goes on; past
// maxRefusing of them, the answer is written inline and the socket closed.
func (t *connTracker) refuse(c net.Conn) {
	if t.refusing.Add(1) > maxRefusing {
		t.refusing.Add(-1)
		// A fresh socket's send buffer is empty: this write does not block.
		_ = c.SetWriteDeadline(time.Now().Add(refuseLinger))
		_, _ = c.Write(busyAnswer)
		c.Close()
		return
	}
	go func() {
		defer t.refusing.Add(-1)
		// Answer the request, not the connect: an HTTP client that reads
		// an answer on a connection it has not used yet takes it for a
		// broken one ("unsolicited response") instead of a 503.
		_ = c.SetDeadline(time.Now().Add(refuseLinger))
		_, _ = c.Read(make([]byte, 4<<10))
		if _, err := c.Write(busyAnswer); err == nil {
			drain(c, 64<<10, refuseLinger)
		}
		c.Close()
	}()
}
