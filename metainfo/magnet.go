package metainfo

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// MaxMagnetLength bounds what we parse; real links are a few hundred bytes.
const MaxMagnetLength = 64 << 10

// Magnet is a parsed BEP 9 magnet link.
type Magnet struct {
	InfoHash Hash
	Name     string   // dn
	Trackers []string // tr, in order, duplicates dropped
	Peers    []string // x.pe as host:port
	WebSeeds []string // ws
	// SelectOnly (BEP 53 so=) lists file indices to download; nil means all.
	SelectOnly []int
}

// ParseMagnet parses a magnet URI. A v1 (btih) infohash is required; a link
// carrying only a v2 (btmh) hash is refused with ErrV2Only.
func ParseMagnet(s string) (*Magnet, error) {
	if len(s) > MaxMagnetLength {
		return nil, magnetErr("longer than %d bytes", MaxMagnetLength)
	}
	rest, ok := strings.CutPrefix(s, "magnet:?")
	if !ok {
		return nil, magnetErr("does not start with magnet:?")
	}
	m := &Magnet{}
	var haveV1, haveV2 bool
	for _, kv := range strings.Split(rest, "&") {
		k, v, _ := strings.Cut(kv, "=")
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, magnetErr("bad escape in %s", k)
		}
		switch baseKey(k) {
		case "xt":
			switch {
			case strings.HasPrefix(val, "urn:btih:"):
				if haveV1 {
					return nil, magnetErr("more than one btih infohash")
				}
				if m.InfoHash, err = parseBTIH(val[len("urn:btih:"):]); err != nil {
					return nil, err
				}
				haveV1 = true
			case strings.HasPrefix(val, "urn:btmh:"):
				haveV2 = true
			}
		case "dn":
			m.Name = val
		case "tr":
			m.Trackers = appendUnique(m.Trackers, val)
		case "ws":
			m.WebSeeds = appendUnique(m.WebSeeds, val)
		case "x.pe":
			if _, _, err := splitHostPort(val); err != nil {
				return nil, magnetErr("x.pe %q: %v", val, err)
			}
			m.Peers = appendUnique(m.Peers, val)
		case "so":
			if m.SelectOnly, err = parseSelectOnly(val); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case haveV1:
		return m, nil
	case haveV2:
		return nil, fmt.Errorf("%w: v2-only magnet links are not supported", ErrV2Only)
	default:
		return nil, magnetErr("no xt=urn:btih: infohash")
	}
}

// String re-encodes the magnet; parsing the result gives an equal Magnet.
func (m *Magnet) String() string {
	var sb strings.Builder
	sb.WriteString("magnet:?xt=urn:btih:")
	sb.WriteString(m.InfoHash.String())
	add := func(k, v string) {
		sb.WriteString("&" + k + "=")
		sb.WriteString(url.QueryEscape(v))
	}
	if m.Name != "" {
		add("dn", m.Name)
	}
	for _, t := range m.Trackers {
		add("tr", t)
	}
	for _, w := range m.WebSeeds {
		add("ws", w)
	}
	for _, p := range m.Peers {
		add("x.pe", p)
	}
	if len(m.SelectOnly) > 0 {
		sb.WriteString("&so=" + formatSelectOnly(m.SelectOnly))
	}
	return sb.String()
}

// baseKey maps numbered parameters (xt.1, tr.2) to their base name; x.pe is
// a name of its own, not a numbered x.
func baseKey(k string) string {
	if k == "x.pe" {
		return k
	}
	if base, n, ok := strings.Cut(k, "."); ok {
		if _, err := strconv.Atoi(n); err == nil {
			return base
		}
	}
	return k
}

func parseBTIH(s string) (Hash, error) {
	var h Hash
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return h, magnetErr("btih is not 40 hex digits")
		}
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil || len(b) != 20 {
			return h, magnetErr("btih is not 32 base32 characters")
		}
		copy(h[:], b)
	default:
		return h, magnetErr("btih has %d characters, want 40 hex or 32 base32", len(s))
	}
	return h, nil
}

// MaxSelectOnly bounds how many indices a so= list may expand to, so that a
// range like 0-999999999 cannot allocate without limit.
const MaxSelectOnly = 100000

func parseSelectOnly(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a {
			return nil, magnetErr("so %q is not a list of indices and ranges", s)
		}
		if b-a >= MaxSelectOnly-len(out) {
			return nil, magnetErr("so selects more than %d files", MaxSelectOnly)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// formatSelectOnly writes ascending runs back as ranges: expanded one index
// at a time, a short so=0-12770 would re-encode past the magnet size limit.
func formatSelectOnly(idx []int) string {
	var sb strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(idx[i]))
		if j > i {
			sb.WriteString("-" + strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return sb.String()
}

func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if host == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	return host, port, nil
}

func appendUnique(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func magnetErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMagnet, fmt.Sprintf(format, args...))
}
