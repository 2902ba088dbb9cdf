package swarm

import (
	"fmt"
	"net/netip"
	"time"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// Mode is what every connection of a swarm does after the handshake.
type Mode int

const (
	// Leech: interested, then keeps Pipeline block requests outstanding
	// whenever unchoked, as fast as they are served (or as RateCap and RTT
	// allow).
	Leech Mode = iota + 1
	// Seed: a full bitfield, unchoke on interest, every request answered at
	// once (or as RateCap and RTT allow) with blocks of the torrent's
	// Payload.
	Seed
	// Idle: handshake, then only keep-alives.
	Idle
)

func (m Mode) String() string {
	switch m {
	case Leech:
		return "leech"
	case Seed:
		return "seed"
	case Idle:
		return "idle"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Transport is how dialed connections reach Config.Target.
type Transport int

const (
	// TCP: the plaintext peer protocol over TCP, on the gnet loops.
	TCP Transport = iota
	// MSE: TCP opened with an MSE handshake that offers RC4 only
	// (netio.InitiateMSE, run by the dialing goroutine, the BitTorrent
	// handshake inside it); then on the gnet loops, RC4 both ways.
	MSE
	// UTP: the plaintext peer protocol over uTP (netio/utp), each
	// connection from a UDP socket of its own, Loops Mux loops driving
	// them; at most 65,536 Peers.
	UTP
)

func (t Transport) String() string {
	switch t {
	case TCP:
		return "tcp"
	case MSE:
		return "mse"
	case UTP:
		return "utp"
	}
	return fmt.Sprintf("transport(%d)", int(t))
}

// Torrent is one torrent the swarm takes part in.
type Torrent struct {
	Meta *metainfo.MetaInfo
	// Payload is the content, for Seed mode: its piece hashes must match
	// Meta (build Meta with MakeTorrent from the same Payload).
	Payload Payload
}

// Config configures a swarm. Zero values take the defaults noted.
type Config struct {
	Mode     Mode
	Torrents []Torrent // dialed connection i takes part in Torrents[i%len]
	// Target is the address every connection dials. It may be left zero
	// when Listen is set and the swarm only accepts.
	Target netip.AddrPort
	// Transport is how dialed connections are made; default TCP.
	Transport Transport
	// Listen, when set ("127.0.0.1:0"), also accepts connections there for
	// any of Torrents, plaintext over TCP whatever Transport; see
	// Swarm.Addr.
	Listen   string
	Peers    int           // connections dialed and kept open; default 1 (0 with Listen only)
	Duration time.Duration // the swarm stops itself after this; default 60 s
	MaxBytes int64         // and once this many payload bytes moved; 0 = no limit
	Churn    float64       // dialed connections closed and reopened per second
	// Pipeline is, for Leech, the requests outstanding per connection
	// (sent, or arrived and not yet counted); default 64, or with a
	// RateCap enough for RateCap x (RTT + pipelineSlack).
	Pipeline int
	BlockLen int     // Leech: request size; default 16 KiB
	Verify   bool    // Leech: SHA-1 check of every piece completed
	Corrupt  float64 // Seed: fraction of connections that send corrupt blocks
	Loops    int     // gnet event loops (and uTP Muxes); default 2
	// Dialers bounds the dials in flight at once (with MSE, until its
	// handshake is done; with uTP, until the SYN is answered); default 32.
	Dialers int
	// DialTimeout bounds one dial (with MSE, and its handshake; with uTP,
	// SYNs are retried for at most this long); default 5 s.
	DialTimeout time.Duration
	// RedialDelay is how long a slot waits after the remote closed it or a
	// dial failed before dialing again; default 1 s; negative: never redial.
	RedialDelay time.Duration
	// SourceIPs spreads dialed connections over 127.0.0.2 .. 127.0.0.(1+N);
	// default (and at most) 249. 1 keeps every connection on 127.0.0.2.
	SourceIPs int
	KeepAlive time.Duration // idle connections send a keep-alive this often; default 60 s
	// RateCap, in bytes per second per connection, makes every connection
	// a capped WAN peer: a leecher counts received blocks at most this
	// fast and asks for more only as it counts them; a seeder sends
	// answers at most this fast. 0: no cap.
	RateCap int64
	// RTT is the round trip added to every request: a leecher's request
	// leaves RTT/2 after it is decided and a block counts RTT/2 after it
	// arrived; a seeder answers RTT after the request arrived. Other
	// messages (handshake, choke, interest) are not delayed. Timing is kept
	// to within half of pacerTick. 0: none.
	RTT time.Duration
}

// pipelineSlack is how much of RateCap a capped leecher keeps requested
// beyond one round trip, so a seeder's scheduling jitter (a choker round,
// a disk read, a busy loop) does not starve it: the cap, not the pipeline,
// is what limits it.
const pipelineSlack = 500 * time.Millisecond

// DefaultPipeline is a leecher's Pipeline when Config leaves it 0: 64, or
// with a cap enough requests of blockLen for rateCap x (rtt +
// pipelineSlack).
func DefaultPipeline(rateCap int64, rtt time.Duration, blockLen int) int {
	if rateCap <= 0 {
		return 64
	}
	return min(max(int((rtt+pipelineSlack).Seconds()*float64(rateCap)/float64(blockLen))+1, 4), 1024)
}

// paced reports whether connections run timed work (rate caps, delays).
func (c *Config) paced() bool { return c.RateCap > 0 || c.RTT > 0 }

func (c *Config) check() error {
	if c.Mode < Leech || c.Mode > Idle {
		return fmt.Errorf("%w: mode %v", ErrConfig, c.Mode)
	}
	if len(c.Torrents) == 0 {
		return fmt.Errorf("%w: no torrent", ErrConfig)
	}
	for i, t := range c.Torrents {
		if t.Meta == nil {
			return fmt.Errorf("%w: torrent %d has no metainfo", ErrConfig, i)
		}
		if c.Mode == Seed && t.Payload.Size != t.Meta.TotalLength {
			return fmt.Errorf("%w: torrent %d: payload of %d bytes for a torrent of %d", ErrConfig, i,
				t.Payload.Size, t.Meta.TotalLength)
		}
	}
	if c.Peers < 0 {
		return fmt.Errorf("%w: %d peers", ErrConfig, c.Peers)
	}
	if c.Peers == 0 && c.Listen == "" {
		c.Peers = 1
	}
	if c.Peers > 0 && !c.Target.IsValid() {
		return fmt.Errorf("%w: no target address to dial", ErrConfig)
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.BlockLen <= 0 {
		c.BlockLen = wire.DefaultBlockLen
	}
	if c.BlockLen > wire.MaxBlockLen {
		return fmt.Errorf("%w: block length %d above %d", ErrConfig, c.BlockLen, wire.MaxBlockLen)
	}
	if c.RateCap < 0 || c.RTT < 0 {
		return fmt.Errorf("%w: rate cap %d, RTT %v", ErrConfig, c.RateCap, c.RTT)
	}
	if c.Pipeline <= 0 {
		c.Pipeline = DefaultPipeline(c.RateCap, c.RTT, c.BlockLen)
	}
	if c.Loops <= 0 {
		c.Loops = 2
	}
	if c.Dialers <= 0 {
		c.Dialers = 32
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RedialDelay == 0 {
		c.RedialDelay = time.Second
	}
	if c.SourceIPs <= 0 || c.SourceIPs > 249 {
		c.SourceIPs = 249
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = time.Minute
	}
	if c.Transport < TCP || c.Transport > UTP {
		return fmt.Errorf("%w: %v", ErrConfig, c.Transport)
	}
	if c.Transport == UTP && c.Peers > maxUTPSlots {
		return fmt.Errorf("%w: %d uTP peers, at most %d", ErrConfig, c.Peers, maxUTPSlots)
	}
	if c.Transport == UTP && c.paced() {
		// Pacing runs on gnet's loops (pacer), which uTP connections are
		// not on.
		return fmt.Errorf("%w: rate caps and RTT are for TCP connections", ErrConfig)
	}
	if c.Corrupt < 0 || c.Corrupt > 1 || c.Churn < 0 {
		return fmt.Errorf("%w: corrupt fraction %v, churn %v", ErrConfig, c.Corrupt, c.Churn)
	}
	return nil
}
