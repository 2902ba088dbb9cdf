package wire

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"gotorrentserver/metainfo"
)

const (
	// ExtHandshakeID is the extended message id of the BEP 10 handshake.
	ExtHandshakeID = 0
	// MaxExtMessages bounds the m dict. Real clients list under 20
	// extensions; more is a peer trying to make us allocate.
	MaxExtMessages = 64
	// MaxClientLen bounds the v string kept from a peer, in bytes.
	MaxClientLen = 128
	// MaxReqQ caps the request queue depth a peer may announce; larger
	// values are clamped, not rejected.
	MaxReqQ = 1 << 16
)

// extLimits: a handshake cannot be longer than an extended message, and no
// client nests beyond m's two levels; 8 tolerates unknown keys that do.
var extLimits = metainfo.Limits{MaxSize: MaxExtendedLen, MaxDepth: 8}

// ExtHandshake is the BEP 10 handshake dict. Zero values mean absent.
//
// M maps extension names to the message ids the sender wants to receive
// them on; id 0 means the sender disables that extension, which matters in
// a repeated handshake, so parsed 0 entries are kept for the caller to act
// on. A value must be used by one goroutine at a time.
type ExtHandshake struct {
	M            map[string]int
	V            string     // client name and version, sanitised for logs
	Port         int        // p: the sender's listen port
	ReqQ         int        // reqq: outstanding requests the sender accepts
	YourIP       netip.Addr // yourip: our address as the sender sees it
	IPv4         netip.Addr // ipv4: the sender's own IPv4 address
	IPv6         netip.Addr // ipv6: the sender's own IPv6 address
	MetadataSize int64      // metadata_size (BEP 9): info dict size in bytes
}

// ParseExtHandshake parses the payload of an extended message with id
// ExtHandshakeID. The payload must be one bencoded dict within extLimits;
// anything else is ErrBadExtHandshake, as is an m dict of more than
// MaxExtMessages entries. Like libtorrent, it is lenient inside the dict:
// unknown keys are ignored and a known key with the wrong type or an
// impossible value (a 5-byte yourip, a port above 65535, an m id above 255)
// is treated as absent, so one client's quirk does not cost a peer. The
// result holds no reference to payload. Safe from any goroutine.
func ParseExtHandshake(payload []byte) (ExtHandshake, error) {
	var h ExtHandshake
	v, err := metainfo.DecodeLimits(payload, extLimits)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrBadExtHandshake, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return h, fmt.Errorf("%w: not a dict", ErrBadExtHandshake)
	}
	if m, ok := d["m"].(map[string]any); ok {
		if len(m) > MaxExtMessages {
			return h, fmt.Errorf("%w: m lists %d extensions, limit %d",
				ErrBadExtHandshake, len(m), MaxExtMessages)
		}
		h.M = make(map[string]int, len(m))
		for name, val := range m {
			id, ok := val.(int64)
			if !ok || name == "" || id < 0 || id > 255 {
				continue
			}
			// The decoder's keys alias payload, which the caller reuses.
			h.M[strings.Clone(name)] = int(id)
		}
	}
	if b, ok := d["v"].([]byte); ok {
		h.V = cleanClient(b)
	}
	if p, ok := d["p"].(int64); ok && p > 0 && p <= 65535 {
		h.Port = int(p)
	}
	if q, ok := d["reqq"].(int64); ok && q > 0 {
		h.ReqQ = int(min(q, MaxReqQ))
	}
	if n, ok := d["metadata_size"].(int64); ok && n > 0 {
		h.MetadataSize = n
	}
	if b, ok := d["yourip"].([]byte); ok && (len(b) == 4 || len(b) == 16) {
		a, _ := netip.AddrFromSlice(b)
		h.YourIP = a.Unmap()
	}
	if b, ok := d["ipv4"].([]byte); ok && len(b) == 4 {
		h.IPv4 = netip.AddrFrom4([4]byte(b))
	}
	if b, ok := d["ipv6"].([]byte); ok && len(b) == 16 {
		if a := netip.AddrFrom16([16]byte(b)); !a.Is4In6() {
			h.IPv6 = a
		}
	}
	return h, nil
}

// cleanClient keeps at most MaxClientLen bytes of valid UTF-8 with control
// characters replaced, so a peer cannot inject newlines or escapes into
// logs. Applying it twice gives the same result.
func cleanClient(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b) // invalid bytes come back as U+FFFD
		b = b[size:]
		if unicode.IsControl(r) {
			r = '?'
		}
		if sb.Len()+utf8.RuneLen(r) > MaxClientLen {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// EncodeExtHandshake bencodes h for sending as extended message
// ExtHandshakeID. m is always present (BEP 10 requires it); other keys only
// when set. It fails with ErrBadExtHandshake on values the receiver would
// reject: more than MaxExtMessages names, an empty name, an id outside
// 0..255, a port outside 0..65535, a negative reqq or metadata_size, or an
// IPv4/IPv6 field holding the other family. Safe from any goroutine.
func EncodeExtHandshake(h ExtHandshake) ([]byte, error) {
	if len(h.M) > MaxExtMessages {
		return nil, fmt.Errorf("%w: %d extensions, limit %d", ErrBadExtHandshake, len(h.M), MaxExtMessages)
	}
	m := make(map[string]any, len(h.M))
	for name, id := range h.M {
		if name == "" || id < 0 || id > 255 {
			return nil, fmt.Errorf("%w: extension %q with id %d", ErrBadExtHandshake, name, id)
		}
		m[name] = int64(id)
	}
	d := map[string]any{"m": m}
	switch {
	case h.Port < 0 || h.Port > 65535:
		return nil, fmt.Errorf("%w: port %d", ErrBadExtHandshake, h.Port)
	case h.ReqQ < 0:
		return nil, fmt.Errorf("%w: reqq %d", ErrBadExtHandshake, h.ReqQ)
	case h.MetadataSize < 0:
		return nil, fmt.Errorf("%w: metadata_size %d", ErrBadExtHandshake, h.MetadataSize)
	case h.IPv4.IsValid() && !h.IPv4.Is4():
		return nil, fmt.Errorf("%w: ipv4 holds %v", ErrBadExtHandshake, h.IPv4)
	case h.IPv6.IsValid() && (!h.IPv6.Is6() || h.IPv6.Is4In6()):
		return nil, fmt.Errorf("%w: ipv6 holds %v", ErrBadExtHandshake, h.IPv6)
	}
	if h.V != "" {
		d["v"] = h.V
	}
	if h.Port > 0 {
		d["p"] = int64(h.Port)
	}
	if h.ReqQ > 0 {
		d["reqq"] = int64(h.ReqQ)
	}
	if h.MetadataSize > 0 {
		d["metadata_size"] = h.MetadataSize
	}
	if h.YourIP.IsValid() {
		d["yourip"] = addrBytes(h.YourIP)
	}
	if h.IPv4.IsValid() {
		d["ipv4"] = addrBytes(h.IPv4)
	}
	if h.IPv6.IsValid() {
		d["ipv6"] = addrBytes(h.IPv6)
	}
	return metainfo.Encode(d)
}

// addrBytes is the compact form BEP 10 uses: 4 bytes for IPv4, 16 for IPv6.
func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}
