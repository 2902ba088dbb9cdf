package tracker

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// BEP 15 wire constants.
const (
	udpProtocolID  = 0x41727101980
	actionConnect  = 0
	actionAnnounce = 1
	actionError    = 3

	udpConnectLen     = 16
	udpAnnounceLen    = 98
	udpAnnounceHdrLen = 20
	// maxUDPReply bounds an accepted datagram: 1362 IPv4 or 454 IPv6 peers,
	// well above the 200 or so any tracker sends. Bigger datagrams are
	// dropped unread, so such a tracker times out rather than costing memory.
	maxUDPReply = 8192
	// maxURLData bounds the BEP 41 URL data we append (passkey paths).
	maxURLData   = 1024
	bep41URLData = 2
)

func buildConnect(txid uint32) []byte {
	b := make([]byte, 0, udpConnectLen)
	b = binary.BigEndian.AppendUint64(b, udpProtocolID)
	b = binary.BigEndian.AppendUint32(b, actionConnect)
	return binary.BigEndian.AppendUint32(b, txid)
}

// buildAnnounce lays out the 98-byte announce request, followed by BEP 41
// URL-data options when urlData is non-empty.
func buildAnnounce(connID uint64, txid uint32, req AnnounceRequest, urlData string) []byte {
	b := make([]byte, 0, udpAnnounceLen+len(urlData)+2*(len(urlData)/255+1))
	b = binary.BigEndian.AppendUint64(b, connID)
	b = binary.BigEndian.AppendUint32(b, actionAnnounce)
	b = binary.BigEndian.AppendUint32(b, txid)
	b = append(b, req.InfoHash[:]...)
	b = append(b, req.PeerID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Downloaded, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Left, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(max(req.Uploaded, 0)))
	b = binary.BigEndian.AppendUint32(b, req.Event.udpCode())
	var ip [4]byte // 0 = "use the sender's address"
	if req.IP.Is4() {
		ip = req.IP.As4()
	}
	b = append(b, ip[:]...)
	b = binary.BigEndian.AppendUint32(b, req.Key)
	numWant := int32(-1) // BEP 15: -1 = tracker default
	if req.NumWant > 0 {
		numWant = int32(min(req.NumWant, maxPeersPerReply))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(numWant))
	b = binary.BigEndian.AppendUint16(b, req.Port)
	for rest := urlData; rest != ""; {
		n := min(len(rest), 255)
		b = append(b, bep41URLData, byte(n))
		b = append(b, rest[:n]...)
		rest = rest[n:]
	}
	return b
}

// parseUDPHeader checks action and transaction id. It reports match=false
// for packets that are not an answer to this request (stray or duplicate),
// which the caller ignores; an error action becomes a *TrackerError.
func parseUDPHeader(b []byte, txid, want uint32) (match bool, err error) {
	if len(b) < 8 || binary.BigEndian.Uint32(b[4:8]) != txid {
		return false, nil
	}
	switch binary.BigEndian.Uint32(b[0:4]) {
	case want:
		return true, nil
	case actionError:
		return true, &TrackerError{Reason: cleanText(b[8:])}
	}
	return false, nil
}

func parseConnectReply(b []byte, txid uint32) (id uint64, match bool, err error) {
	if match, err = parseUDPHeader(b, txid, actionConnect); !match || err != nil {
		return 0, match, err
	}
	if len(b) < udpConnectLen {
		return 0, true, fmt.Errorf("%w: connect reply of %d bytes", ErrBadResponse, len(b))
	}
	return binary.BigEndian.Uint64(b[8:16]), true, nil
}

// parseUDPAnnounceReply decodes an announce reply (or error packet). v6
// selects 18-byte peer entries, which BEP 15 uses when the tracker was
// reached over IPv6.
func parseUDPAnnounceReply(b []byte, txid uint32, v6 bool) (out AnnounceResponse, match bool, err error) {
	if match, err = parseUDPHeader(b, txid, actionAnnounce); !match || err != nil {
		return out, match, err
	}
	if len(b) < udpAnnounceHdrLen {
		return out, true, fmt.Errorf("%w: announce reply of %d bytes", ErrBadResponse, len(b))
	}
	interval := binary.BigEndian.Uint32(b[8:12])
	out.Interval = time.Duration(min(int64(interval), maxIntervalSeconds)) * time.Second
	out.Leechers = udpCount(binary.BigEndian.Uint32(b[12:16]))
	out.Seeders = udpCount(binary.BigEndian.Uint32(b[16:20]))
	peers, err := parseCompactPeers(b[udpAnnounceHdrLen:], v6)
	if err != nil {
		return AnnounceResponse{}, true, err
	}
	var set peerSet
	set.add(peers...)
	out.Peers = set.list
	return out, true, nil
}

// udpCount maps the unsigned wire count to int; values that would be
// negative as int32 are treated as unknown, as some trackers send -1.
func udpCount(v uint32) int {
	if int32(v) < 0 {
		return -1
	}
	return int(v)
}

// udpTarget is a parsed udp:// announce URL.
type udpTarget struct {
	host    string
	port    uint16
	urlData string // BEP 41 path and query, "" when there is nothing to pass
}

// parseUDPURL accepts udp://host:port and udp://host:port/anything?query.
// The conventional paths "", "/" and "/announce" carry no information and
// are not sent, so plain trackers never see an option they might reject.
func parseUDPURL(raw string) (udpTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return udpTarget{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "udp" {
		return udpTarget{}, fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if u.Hostname() == "" || err != nil || port == 0 {
		return udpTarget{}, fmt.Errorf("%w: udp tracker needs host and port", ErrBadURL)
	}
	t := udpTarget{host: u.Hostname(), port: uint16(port)}
	path := u.EscapedPath()
	if u.RawQuery != "" || (path != "" && path != "/" && path != "/announce") {
		t.urlData = path
		if u.RawQuery != "" {
			t.urlData += "?" + u.RawQuery
		}
	}
	if len(t.urlData) > maxURLData {
		return udpTarget{}, fmt.Errorf("%w: URL path and query exceed %d bytes", ErrBadURL, maxURLData)
	}
	return t, nil
}

// connCache remembers BEP 15 connection ids per resolved tracker address
// (not per host name: behind DNS round robin each server issues its own).
type connCache struct {
	mu sync.Mutex
	m  map[netip.AddrPort]connEntry
}

type connEntry struct {
	id uint64
	at time.Time
}

const connCachePrune = 256

func (c *connCache) get(addr netip.AddrPort, now time.Time) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[addr]
	if !ok || now.Sub(e.at) >= connectionIDTTL || now.Before(e.at) {
		return 0, false
	}
	return e.id, true
}

func (c *connCache) put(addr netip.AddrPort, id uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[netip.AddrPort]connEntry)
	}
	// Expired entries are useless; sweeping them when the map grows keeps it
	// bounded by the number of trackers contacted within a minute.
	if len(c.m) >= connCachePrune {
		for k, e := range c.m {
			if now.Sub(e.at) >= connectionIDTTL {
				delete(c.m, k)
			}
		}
	}
	c.m[addr] = connEntry{id: id, at: now}
}

func (c *connCache) forget(addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, addr)
}
