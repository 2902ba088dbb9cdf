package ext

import (
	"fmt"
	"net/netip"
	"strconv"

	"gotorrentserver/metainfo"
)

// PEX flags (BEP 11 added.f), one byte per added peer.
const (
	PexEncryption byte = 0x01 // prefers encrypted connections
	PexSeed       byte = 0x02 // seed or upload-only
	PexUTP        byte = 0x04 // supports uTP
	PexHolepunch  byte = 0x08 // supports ut_holepunch
	PexReachable  byte = 0x10 // we connected out to it, so it accepts connections
)

const (
	// MaxPexPeers bounds each list (added, dropped) of each family that
	// ParsePex keeps, as libtorrent does; the rest of a list is ignored.
	MaxPexPeers = 200
	// maxPexPayload bounds the message: full lists of both families fit
	// in well under 16 KiB; the wire layer caps extended messages anyway.
	maxPexPayload = 64 << 10
	pexV4Len      = metainfo.CompactPeerV4Len
	pexV6Len      = metainfo.CompactPeerV6Len
)

var pexLimits = metainfo.Limits{MaxSize: maxPexPayload, MaxDepth: 4}

// PexPeer is one added peer and its flags.
type PexPeer struct {
	Addr  netip.AddrPort
	Flags byte
}

// Pex is one ut_pex message with both address families merged: IPv4 peers
// travel in added/dropped, IPv6 ones in added6/dropped6.
type Pex struct {
	Added   []PexPeer
	Dropped []netip.AddrPort
}

// ParsePex decodes a ut_pex payload. The payload must be a bencoded dict
// (else ErrBadPex); inside it the parser is lenient like libtorrent: a list
// whose length is not a whole number of entries is ignored, flags whose
// count does not match their list are treated as zero, entries with port 0
// or an unusable address (unspecified, multicast, IPv4-mapped in the IPv6
// lists) are skipped, and each list keeps at most MaxPexPeers entries. The
// result does not alias payload. Safe from any goroutine.
func ParsePex(payload []byte) (Pex, error) {
	var p Pex
	v, err := metainfo.DecodeLimits(payload, pexLimits)
	if err != nil {
		return p, fmt.Errorf("%w: %w", ErrBadPex, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return p, fmt.Errorf("%w: not a dict", ErrBadPex)
	}
	for _, fam := range []struct {
		added, flags, dropped string
		size                  int
	}{{"added", "added.f", "dropped", pexV4Len}, {"added6", "added6.f", "dropped6", pexV6Len}} {
		added := compactField(d, fam.added, fam.size)
		flags, _ := d[fam.flags].([]byte)
		if len(flags) != len(added)/fam.size {
			flags = nil
		}
		for i := 0; i < len(added)/fam.size && i < MaxPexPeers; i++ {
			if ap, ok := metainfo.ParseCompactPeer(added[i*fam.size:(i+1)*fam.size], metainfo.RefuseMapped); ok {
				var fl byte
				if flags != nil {
					fl = flags[i]
				}
				p.Added = append(p.Added, PexPeer{Addr: ap, Flags: fl})
			}
		}
		dropped := compactField(d, fam.dropped, fam.size)
		for i := 0; i < len(dropped)/fam.size && i < MaxPexPeers; i++ {
			if ap, ok := metainfo.ParseCompactPeer(dropped[i*fam.size:(i+1)*fam.size], metainfo.RefuseMapped); ok {
				p.Dropped = append(p.Dropped, ap)
			}
		}
	}
	return p, nil
}

// compactField returns d[key] when it is a string of whole size-byte
// entries, else nil.
func compactField(d map[string]any, key string, size int) []byte {
	b, _ := d[key].([]byte)
	if len(b)%size != 0 {
		return nil
	}
	return b
}

// AppendPex appends the ut_pex payload for p to dst: all six keys, as
// libtorrent sends them, with at most MaxPexPeers entries per list and
// family (the first ones; the rest are left out so receivers keep all we
// send). Addresses without a port or zone-scoped are skipped. Safe from any
// goroutine.
func AppendPex(dst []byte, p Pex) []byte {
	var a4, f4, a6, f6, d4, d6 []byte
	for _, e := range p.Added {
		if e.Addr.Addr().Unmap().Is4() {
			if len(f4) < MaxPexPeers && appendable(e.Addr) {
				a4, f4 = metainfo.AppendCompactPeer(a4, e.Addr), append(f4, e.Flags)
			}
		} else if len(f6) < MaxPexPeers && appendable(e.Addr) {
			a6, f6 = metainfo.AppendCompactPeer(a6, e.Addr), append(f6, e.Flags)
		}
	}
	for _, ap := range p.Dropped {
		if ap.Addr().Unmap().Is4() {
			if len(d4) < MaxPexPeers*pexV4Len && appendable(ap) {
				d4 = metainfo.AppendCompactPeer(d4, ap)
			}
		} else if len(d6) < MaxPexPeers*pexV6Len && appendable(ap) {
			d6 = metainfo.AppendCompactPeer(d6, ap)
		}
	}
	dst = append(dst, 'd')
	for _, kv := range []struct {
		k string
		v []byte
	}{{"added", a4}, {"added.f", f4}, {"added6", a6}, {"added6.f", f6}, {"dropped", d4}, {"dropped6", d6}} {
		dst = appendString(dst, kv.k)
		dst = strconv.AppendInt(dst, int64(len(kv.v)), 10)
		dst = append(dst, ':')
		dst = append(dst, kv.v...)
	}
	return append(dst, 'e')
}

func appendable(ap netip.AddrPort) bool {
	a := ap.Addr()
	return a.IsValid() && ap.Port() != 0 && a.Zone() == ""
}

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}
