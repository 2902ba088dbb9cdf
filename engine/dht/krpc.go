package dht

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"gotorrentserver/metainfo"
)

// KRPC methods of BEP 5.
const (
	MethodPing         = "ping"
	MethodFindNode     = "find_node"
	MethodGetPeers     = "get_peers"
	MethodAnnouncePeer = "announce_peer"
)

// KRPC error codes.
const (
	ErrCodeGeneric  = 201
	ErrCodeServer   = 202
	ErrCodeProtocol = 203
	ErrCodeMethod   = 204
)

const (
	// MaxPacketSize bounds a KRPC packet we read or decode. Real messages
	// stay under the 1500-byte Ethernet MTU: a get_peers reply with 100
	// values and 8 nodes is about 1.1 KB. Anything larger is dropped.
	MaxPacketSize = 2048
	maxTxIDLen    = 32  // we send 4; clients send 2 to 4
	maxTokenLen   = 64  // we send 8; libtorrent sends 4 to 8
	maxVersionLen = 16  // "v": 4 bytes in practice
	maxErrMsgLen  = 128 // error text we keep
)

// krpcLimits: the deepest real message is a reply's values list (dict,
// dict, list); one spare level tolerates unknown keys like "want".
var krpcLimits = metainfo.Limits{MaxSize: MaxPacketSize, MaxDepth: 4}

// Msg is one KRPC message. Y selects which part is meaningful: Q and A for
// queries ('q'), R for replies ('r'), E for errors ('e'). Parsed byte
// fields are copies, never aliases of the packet.
type Msg struct {
	T  []byte // transaction id, echoed in the reply
	Y  byte
	Q  string // query method
	A  Args
	R  Reply
	E  RemoteError
	IP netip.AddrPort // BEP 42 "ip": the querier's address as the replier sees it
	RO bool           // BEP 43 read-only querier: do not add it to routing tables
	V  []byte         // client version
}

// Args are query arguments. Which are meaningful depends on the method:
// ID always; Target for find_node; InfoHash for get_peers and
// announce_peer; Port, ImpliedPort and Token for announce_peer.
type Args struct {
	ID          NodeID
	Target      NodeID
	InfoHash    metainfo.Hash
	Port        int
	ImpliedPort bool // use the UDP source port instead of Port (BEP 5)
	Token       []byte
}

// Reply holds reply values; all but ID are optional.
type Reply struct {
	ID     NodeID
	Nodes  []NodeInfo       // compact IPv4 nodes (26 bytes each)
	Nodes6 []NodeInfo       // compact IPv6 nodes (38 bytes each, BEP 32)
	Values []netip.AddrPort // compact peers, 6 or 18 bytes each
	Token  []byte
}

// ParseMsg decodes one KRPC packet. Envelope problems (bencode, limits, no
// t or y, unknown y) are ErrBadPacket and the packet should be dropped. A
// query with bad arguments is ErrBadQuery and an unknown method is
// ErrUnknownMethod; both come back with T, Y and Q set so a server can send
// the matching error. Inside replies the parser is lenient: a nodes string
// of the wrong length, or a values entry of the wrong size, is skipped
// rather than failing the reply, as libtorrent does. Safe from any
// goroutine.
func ParseMsg(b []byte) (Msg, error) {
	var m Msg
	v, err := metainfo.DecodeLimits(b, krpcLimits)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrBadPacket, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return m, fmt.Errorf("%w: not a dict", ErrBadPacket)
	}
	t, ok := d["t"].([]byte)
	if !ok || len(t) > maxTxIDLen {
		return m, fmt.Errorf("%w: missing or oversized t", ErrBadPacket)
	}
	y, ok := d["y"].([]byte)
	if !ok || len(y) != 1 {
		return m, fmt.Errorf("%w: missing y", ErrBadPacket)
	}
	m.T, m.Y = clone(t), y[0]
	if v, ok := d["v"].([]byte); ok && len(v) <= maxVersionLen {
		m.V = clone(v)
	}
	if ro, ok := d["ro"].(int64); ok && ro == 1 {
		m.RO = true
	}
	switch m.Y {
	case 'q':
		return m, parseQuery(&m, d)
	case 'r':
		if ip, ok := d["ip"].([]byte); ok {
			m.IP, _ = metainfo.ParseCompactPeer(ip, metainfo.RefuseMapped)
		}
		return m, parseReply(&m, d)
	case 'e':
		parseError(&m, d)
		return m, nil
	}
	return m, fmt.Errorf("%w: y=%q", ErrBadPacket, m.Y)
}

func parseQuery(m *Msg, d map[string]any) error {
	q, ok := d["q"].([]byte)
	if !ok {
		return fmt.Errorf("%w: query without q", ErrBadPacket)
	}
	a, _ := d["a"].(map[string]any)
	switch string(q) {
	case MethodPing, MethodFindNode, MethodGetPeers, MethodAnnouncePeer:
		m.Q = string(q)
	default:
		// Keep a bounded, printable name for logs; nothing depends on it.
		m.Q = cleanText(q, 32)
		if id, ok := id20(a, "id"); ok {
			m.A.ID = NodeID(id)
		}
		return fmt.Errorf("%w: %q", ErrUnknownMethod, m.Q)
	}
	id, ok := id20(a, "id")
	if !ok {
		return fmt.Errorf("%w: %s without a 20-byte id", ErrBadQuery, m.Q)
	}
	m.A.ID = NodeID(id)
	switch m.Q {
	case MethodFindNode:
		if m.A.Target, ok = id20(a, "target"); !ok {
			return fmt.Errorf("%w: find_node without a 20-byte target", ErrBadQuery)
		}
	case MethodGetPeers, MethodAnnouncePeer:
		if m.A.InfoHash, ok = id20(a, "info_hash"); !ok {
			return fmt.Errorf("%w: %s without a 20-byte info_hash", ErrBadQuery, m.Q)
		}
	}
	if m.Q != MethodAnnouncePeer {
		return nil
	}
	tok, ok := a["token"].([]byte)
	if !ok || len(tok) == 0 || len(tok) > maxTokenLen {
		return fmt.Errorf("%w: announce_peer without a usable token", ErrBadQuery)
	}
	m.A.Token = clone(tok)
	if ip, ok := a["implied_port"].(int64); ok && ip != 0 {
		m.A.ImpliedPort = true
	}
	port, ok := a["port"].(int64)
	switch {
	case ok && port >= 0 && port <= 65535:
		m.A.Port = int(port)
	case !m.A.ImpliedPort || ok:
		return fmt.Errorf("%w: announce_peer port missing or out of range", ErrBadQuery)
	}
	if m.A.Port == 0 && !m.A.ImpliedPort {
		return fmt.Errorf("%w: announce_peer port 0", ErrBadQuery)
	}
	return nil
}

func parseReply(m *Msg, d map[string]any) error {
	r, _ := d["r"].(map[string]any)
	id, ok := id20(r, "id")
	if !ok {
		return fmt.Errorf("%w: reply without a 20-byte id", ErrBadPacket)
	}
	m.R.ID = NodeID(id)
	if b, ok := r["nodes"].([]byte); ok {
		m.R.Nodes = parseCompactNodes(b, compactNodeV4)
	}
	if b, ok := r["nodes6"].([]byte); ok {
		m.R.Nodes6 = parseCompactNodes(b, compactNodeV6)
	}
	if vals, ok := r["values"].([]any); ok {
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				if ap, ok := metainfo.ParseCompactPeer(b, metainfo.RefuseMapped); ok {
					m.R.Values = append(m.R.Values, ap)
				}
			}
		}
	}
	if tok, ok := r["token"].([]byte); ok && len(tok) > 0 && len(tok) <= maxTokenLen {
		m.R.Token = clone(tok)
	}
	return nil
}

// parseError is lenient: a KRPC error is a failed query whatever its shape.
func parseError(m *Msg, d map[string]any) {
	e, _ := d["e"].([]any)
	if len(e) > 0 {
		if c, ok := e[0].(int64); ok && c >= 0 && c < 1000 {
			m.E.Code = int(c)
		}
	}
	if len(e) > 1 {
		if s, ok := e[1].([]byte); ok {
			m.E.Msg = cleanText(s, maxErrMsgLen)
		}
	}
}

// id20 reads a 20-byte string key from d (which may be nil).
func id20(d map[string]any, key string) ([20]byte, bool) {
	b, ok := d[key].([]byte)
	if !ok || len(b) != 20 {
		return [20]byte{}, false
	}
	return [20]byte(b), true
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// cleanText keeps at most n bytes of valid, printable UTF-8 so remote text
// cannot inject control characters into logs. It is idempotent.
func cleanText(b []byte, n int) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		if sb.Len()+utf8.RuneLen(r) > n {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
