// Package tracker implements the HTTP(S) (BEP 3, 23, 7) and UDP (BEP 15)
// tracker protocols and BEP 12 tier bookkeeping.
//
// Announces block on the network, so Client runs them on its own goroutines
// and reports results as values; the per-torrent session loop only ever
// touches Tiers (plain data, no I/O) and the Result values it receives.
//
// Private-torrent rules (announce only to the torrent's own trackers, no DHT
// or PEX, no tracker list edits) are the caller's business: this package
// contacts exactly the URL it is given and nothing else.
package tracker

import (
	"net/http"
	"net/netip"
	"time"

	"gotorrentserver/metainfo"
)

// Event is the announce event of BEP 3.
type Event int

const (
	None Event = iota
	Started
	Completed
	Stopped
)

// String returns the HTTP spelling; None is the empty string.
func (e Event) String() string {
	switch e {
	case Started:
		return "started"
	case Completed:
		return "completed"
	case Stopped:
		return "stopped"
	}
	return ""
}

// udpCode is the BEP 15 numbering, which differs from the order above.
func (e Event) udpCode() uint32 {
	switch e {
	case Completed:
		return 1
	case Started:
		return 2
	case Stopped:
		return 3
	}
	return 0
}

// AnnounceRequest is what we tell a tracker. It is a value: build one per
// announce from the session's counters.
type AnnounceRequest struct {
	InfoHash   metainfo.Hash
	PeerID     [20]byte
	Port       uint16
	Uploaded   int64 // negative values are sent as 0
	Downloaded int64
	Left       int64
	Event      Event
	// NumWant is how many peers we would like; 0 or negative lets the
	// tracker pick its default, so a zero value never asks for no peers.
	NumWant int
	Key     uint32 // stable per session, lets the tracker recognise us across IP changes
	// Compact asks HTTP trackers for BEP 23 peer strings (compact=1). The
	// zero value sends compact=0; NewRequest sets it. Both reply forms are
	// parsed whatever was asked, since trackers are free to ignore it.
	Compact bool
	// IP is sent only when valid (HTTP "ip", or the UDP IPv4 field when it is
	// an IPv4 address). Most trackers ignore it unless the sender is trusted.
	IP netip.Addr
	// TrackerID echoes AnnounceResponse.TrackerID from this tracker's last
	// reply (HTTP only); Tiers.TrackerID keeps it for the caller.
	TrackerID string
}

// NewRequest returns a request with the defaults a client normally wants
// (compact peer lists, tracker-chosen peer count).
func NewRequest(infoHash metainfo.Hash, peerID [20]byte, port uint16) AnnounceRequest {
	return AnnounceRequest{InfoHash: infoHash, PeerID: peerID, Port: port, Compact: true}
}

// AnnounceResponse is what a tracker told us. It owns all of its memory.
type AnnounceResponse struct {
	Interval    time.Duration // 0 when the tracker sent none
	MinInterval time.Duration // 0 when the tracker sent none
	Seeders     int           // "complete"; -1 when unknown
	Leechers    int           // "incomplete"; -1 when unknown
	// Peers merges IPv4 and IPv6 entries from every form the tracker used,
	// deduplicated, IPv4-mapped IPv6 unmapped, port 0 and unspecified
	// addresses dropped.
	Peers []netip.AddrPort
	// PeerIDs is filled only from dictionary-form peer lists, for the
	// entries that carried a 20-byte id; nil otherwise.
	PeerIDs   map[netip.AddrPort][20]byte
	Warning   string
	TrackerID string
}

// Result is an announce's outcome, as the engine hands it to a session.
type Result struct {
	URL      string
	Request  AnnounceRequest
	Response AnnounceResponse
	Err      error
}

// UDPConfig tunes BEP 15 retransmission.
//
// The spec's schedule (15·2^n s, n up to 8) can keep one announce alive for
// over an hour; a seedbox with thousands of torrents cannot afford that, so
// MaxTotal caps the whole exchange. With the defaults a dead tracker costs
// 60 s: sends at 0, 15 and 45 s, the last wait cut short at 60 s. Each wait
// is also capped at MaxTotal.
type UDPConfig struct {
	BaseTimeout time.Duration // first wait; default 15 s
	// MaxRetries is the number of retransmissions after the first send;
	// 0 means the spec's 8, negative means none.
	MaxRetries int
	MaxTotal   time.Duration // budget for connect+announce; default 60 s
}

// Config configures a Client. The zero value is usable.
type Config struct {
	HTTPTimeout     time.Duration // per HTTP request, default 30 s
	MaxResponseSize int64         // HTTP body bound, default 2 MiB
	UserAgent       string        // default "GoTorrentServer/0.1"
	// HTTPClient overrides the HTTP client (tests with TLS, custom proxies).
	// Its own Timeout, if any, applies in addition to HTTPTimeout.
	HTTPClient *http.Client
	UDP        UDPConfig
	// Socket, when set, carries UDP announces to the families it reaches
	// (netio's socket on the peer port, shared with the DHT); others go
	// through a socket of the client's own. The client never closes it.
	Socket Socket
	// Now is the clock for UDP connection-id expiry; default time.Now.
	Now func() time.Time
}

const (
	defaultHTTPTimeout  = 30 * time.Second
	defaultMaxResponse  = 2 << 20
	defaultUserAgent    = "GoTorrentServer/0.1"
	defaultUDPBase      = 15 * time.Second
	defaultUDPRetries   = 8
	defaultUDPMaxTotal  = 60 * time.Second
	connectionIDTTL     = time.Minute // BEP 15: the client may use an id for one minute
	maxIntervalSeconds  = 1 << 31     // keeps Duration arithmetic far from overflow
	httpBencodeMaxDepth = 8           // peers dict list is depth 3; leave room for extras
)

func (c Config) withDefaults() Config {
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = defaultHTTPTimeout
	}
	if c.MaxResponseSize <= 0 {
		c.MaxResponseSize = defaultMaxResponse
	}
	if c.UserAgent == "" {
		c.UserAgent = defaultUserAgent
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UDP.BaseTimeout <= 0 {
		c.UDP.BaseTimeout = defaultUDPBase
	}
	switch {
	case c.UDP.MaxRetries == 0:
		c.UDP.MaxRetries = defaultUDPRetries
	case c.UDP.MaxRetries < 0:
		c.UDP.MaxRetries = 0
	}
	if c.UDP.MaxTotal <= 0 {
		c.UDP.MaxTotal = defaultUDPMaxTotal
	}
	return c
}
