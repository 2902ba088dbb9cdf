package swarm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// Swarm is a running synthetic swarm. Its methods are safe for concurrent
// use from any goroutine.
type Swarm struct {
	gnet.BuiltinEventEngine
	cfg      Config
	torrents []*torrent
	byHash   map[metainfo.Hash]*torrent
	cli      *gnet.Client
	utp      utpSockets // with Transport UTP
	ln       net.Listener
	addr     netip.AddrPort
	slots    []slot
	dialq    chan int
	ctx      context.Context
	cancel   context.CancelFunc
	workers  sync.WaitGroup
	start    time.Time
	stopOnce sync.Once
	final    Stats
	ids      atomic.Uint64
	cnt      counters
	lastErr  atomic.Pointer[string] // the last protocol error, for reports
	reg      registry
	pmu      sync.Mutex
	pacers   []*pacer // one per event loop that has a paced connection
}

// slot is one dialed connection position, reopened after churn or a close.
// bytes outlives the connections so per-connection rates span reconnects.
type slot struct {
	bytes atomic.Int64
	conn  atomic.Pointer[conn]
}

type counters struct {
	down, up, piecesOK, piecesBad, unexpected atomic.Int64
	open, handshaken                          atomic.Int64
	dials, dialErrors, remoteCloses           atomic.Int64
	protocolErrors, churned                   atomic.Int64
	firstHandshake                            atomic.Int64 // on the swarm's clock; 0: none yet
}

// torrent is the read-only per-torrent data every connection shares.
type torrent struct {
	idx      int // in Config.Torrents
	mi       *metainfo.MetaInfo
	payload  Payload
	bitfield []byte // the whole bitfield frame, for Seed
	maxFrame int
	moved    atomic.Int64 // payload bytes counted on its connections
}

// Start validates cfg, starts the event loops, the listener and the dials,
// and returns at once; the swarm stops itself after cfg.Duration.
func Start(cfg Config) (*Swarm, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Swarm{cfg: cfg, byHash: map[metainfo.Hash]*torrent{}, slots: make([]slot, cfg.Peers),
		dialq: make(chan int, cfg.Peers)}
	for i, t := range cfg.Torrents {
		n := t.Meta.NumPieces()
		bf := make([]byte, wire.BitfieldLen(n))
		for i := range n {
			bf[i/8] |= 0x80 >> (i % 8)
		}
		tt := &torrent{idx: i, mi: t.Meta, payload: t.Payload, bitfield: wire.AppendBitfield(nil, bf),
			maxFrame: wire.MaxFrame(wire.MaxBlockLen, n)}
		s.torrents = append(s.torrents, tt)
		s.byHash[t.Meta.InfoHash] = tt
	}
	cli, err := gnet.NewClient(s, gnet.WithMulticore(true), gnet.WithNumEventLoop(cfg.Loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReadBufferCap(256<<10),
		gnet.WithLogger(quiet{}))
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	s.cli = cli
	s.ctx, s.cancel = context.WithTimeout(context.Background(), cfg.Duration)
	s.start = time.Now()
	if cfg.Transport == UTP {
		s.utp.open(cfg.Target, cfg.Peers, cfg.Loops, cfg.DialTimeout)
	}
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			s.cancel()
			cli.Stop()
			s.utp.close()
			return nil, fmt.Errorf("swarm: listen: %w", err)
		}
		s.ln = ln
		s.addr, _ = netip.ParseAddrPort(ln.Addr().String())
		s.workers.Add(1)
		go s.accept()
	}
	for i := range cfg.Peers {
		s.dialq <- i
	}
	for range min(cfg.Dialers, max(cfg.Peers, 1)) {
		s.workers.Add(1)
		go s.dialer()
	}
	s.workers.Add(1)
	go s.control()
	if cfg.paced() {
		s.workers.Add(1)
		go s.pace()
	}
	return s, nil
}

// Elapsed is the time since Start: the clock of ConnSnapshot.
func (s *Swarm) Elapsed() time.Duration { return s.clock() }

// Addr is the listening address (zero without Config.Listen).
func (s *Swarm) Addr() netip.AddrPort { return s.addr }

// Done is closed once the swarm has reached its Duration or MaxBytes, or
// Stop was called; call Stop (or Wait) then to release it.
func (s *Swarm) Done() <-chan struct{} { return s.ctx.Done() }

// Wait blocks until Done and then stops the swarm; it returns the final
// counters.
func (s *Swarm) Wait() Stats {
	<-s.ctx.Done()
	return s.Stop()
}

// Stop closes every connection and stops the event loops; it returns the
// final counters. Later calls return the same.
func (s *Swarm) Stop() Stats {
	s.stopOnce.Do(func() {
		s.cancel()
		if s.ln != nil {
			s.ln.Close()
		}
		s.workers.Wait()
		// Open and Handshaken before closing, so they show the end state;
		// the byte counters after the loops stopped, so they agree with
		// each other (read while blocks arrive, the total and the
		// per-connection sums could differ by a block).
		open, handshaken := s.cnt.open.Load(), s.cnt.handshaken.Load()
		s.cli.Stop()
		s.utp.close()
		s.final = s.Stats()
		s.final.Open, s.final.Handshaken = open, handshaken
	})
	return s.final
}

func (s *Swarm) stopping() bool { return s.ctx.Err() != nil }

// dialer dials slots from the queue, each from its own source address, and
// enrolls the connection on an event loop (which sends the handshake).
func (s *Swarm) dialer() {
	defer s.workers.Done()
	for {
		var i int
		select {
		case <-s.ctx.Done():
			return
		case i = <-s.dialq:
		}
		s.cnt.dials.Add(1)
		var err error
		if s.cfg.Transport == UTP {
			err = s.dialUTP(i)
		} else {
			err = s.dialTCP(i)
		}
		if err != nil && !s.stopping() {
			s.cnt.dialErrors.Add(1)
			s.redial(i, s.cfg.RedialDelay)
		}
	}
}

// dialTCP dials slot i, runs the MSE handshake if asked, and enrolls the
// connection on an event loop.
func (s *Swarm) dialTCP(i int) error {
	src := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i%s.cfg.SourceIPs)})
	d := net.Dialer{Timeout: s.cfg.DialTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	nc, err := d.DialContext(s.ctx, "tcp", s.cfg.Target.String())
	if err != nil {
		return err
	}
	c := s.newConn(i, s.torrents[i%len(s.torrents)], false)
	if s.cfg.Transport == MSE {
		if err := c.initiateMSE(nc, s.cfg.DialTimeout); err != nil {
			nc.Close()
			return err
		}
	}
	_, err = s.cli.EnrollContext(nc, c)
	return err
}

// redial queues slot i again after d; negative d means never. The queue
// holds every slot at most once, so it never blocks.
func (s *Swarm) redial(i int, d time.Duration) {
	switch {
	case s.stopping() || d < 0:
	case d == 0:
		s.dialq <- i
	default:
		time.AfterFunc(d, func() {
			if !s.stopping() {
				s.dialq <- i
			}
		})
	}
}

// accept enrolls inbound connections; they wait for the peer's handshake.
func (s *Swarm) accept() {
	defer s.workers.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.cli.EnrollContext(nc, s.newConn(-1, nil, true))
	}
}

// control enforces MaxBytes, churns and sends keep-alives, every 100 ms.
func (s *Swarm) control() {
	defer s.workers.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	budget := 0.0
	lastKA := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		if s.cfg.MaxBytes > 0 && s.cnt.down.Load()+s.cnt.up.Load() >= s.cfg.MaxBytes {
			s.cancel()
			return
		}
		if s.cfg.Churn > 0 && len(s.slots) > 0 {
			budget += s.cfg.Churn / 10
			for tries := 0; budget >= 1 && tries < 4*len(s.slots); tries++ {
				c := s.slots[rng.IntN(len(s.slots))].conn.Load()
				if c == nil || !c.churned.CompareAndSwap(false, true) {
					continue
				}
				budget--
				s.cnt.churned.Add(1)
				c.lk.close()
			}
			budget = min(budget, 1) // closes that found no open connection are not owed later
		}
		if time.Since(lastKA) >= s.cfg.KeepAlive {
			lastKA = time.Now()
			for i := range s.slots {
				if c := s.slots[i].conn.Load(); c != nil {
					c.lk.keepAlive()
				}
			}
		}
	}
}

// quiet drops gnet's log lines: a benchmark's output is its tables.
type quiet struct{}

func (quiet) Debugf(string, ...any) {}
func (quiet) Infof(string, ...any)  {}
func (quiet) Warnf(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(string, ...any) {}
