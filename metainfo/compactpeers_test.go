package metainfo

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestCompactPeerRoundTrip(t *testing.T) {
	for _, s := range []string{"1.2.3.4:6881", "[2001:db8::1]:51413", "255.255.255.254:65535"} {
		ap := netip.MustParseAddrPort(s)
		b := AppendCompactPeer(nil, ap)
		want := CompactPeerV4Len
		if ap.Addr().Is6() {
			want = CompactPeerV6Len
		}
		if len(b) != want {
			t.Fatalf("%s: %d bytes, want %d", s, len(b), want)
		}
		got, ok := ParseCompactPeer(b, RefuseMapped)
		if !ok || got != ap {
			t.Fatalf("%s: parsed back as %v, %v", s, got, ok)
		}
	}
	// A mapped address travels in the 6-byte form.
	if b := AppendCompactPeer(nil, netip.MustParseAddrPort("[::ffff:1.2.3.4]:80")); len(b) != CompactPeerV4Len {
		t.Fatalf("mapped address encoded in %d bytes", len(b))
	}
}

func TestParseCompactPeerRefuses(t *testing.T) {
	mapped := append(make([]byte, 10), 0xff, 0xff, 1, 2, 3, 4, 0x1a, 0xe1)
	for name, b := range map[string][]byte{
		"port 0":       {1, 2, 3, 4, 0, 0},
		"unspecified":  {0, 0, 0, 0, 0x1a, 0xe1},
		"multicast":    {224, 0, 0, 1, 0x1a, 0xe1},
		"v6 multicast": append([]byte{0xff, 2}, make([]byte, 16)...)[:18],
		"short":        {1, 2, 3, 4, 5},
		"mapped":       mapped,
	} {
		if ap, ok := ParseCompactPeer(b, RefuseMapped); ok {
			t.Errorf("%s: accepted as %v", name, ap)
		}
	}
	if ap, ok := ParseCompactPeer(mapped, UnmapMapped); !ok || ap != netip.MustParseAddrPort("1.2.3.4:6881") {
		t.Fatalf("mapped with UnmapMapped: %v %v", ap, ok)
	}
}

func TestParseCompactPeers(t *testing.T) {
	in := []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("5.6.7.8:2"), netip.MustParseAddrPort("9.9.9.9:3")}
	var b []byte
	for _, p := range in {
		b = AppendCompactPeer(b, p)
	}
	b = append(b, 0, 0, 0, 0, 1, 1) // unspecified: skipped
	got, err := ParseCompactPeers(b, false, 0, RefuseMapped)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, _ := ParseCompactPeers(b, false, 2, RefuseMapped); len(got) != 2 {
		t.Fatalf("max 2 gave %v", got)
	}
	if _, err := ParseCompactPeers(b[:7], false, 0, RefuseMapped); !errors.Is(err, ErrCompactPeers) {
		t.Fatalf("ragged: %v", err)
	}
	if _, err := ParseCompactPeers(b, true, 0, RefuseMapped); !errors.Is(err, ErrCompactPeers) {
		t.Fatalf("24 bytes as v6: %v", err)
	}
}

// FuzzCompactPeers: a ragged string is refused, a whole one yields at most
// one peer per entry, and every peer re-encodes to an entry of the input
// (for an unmapped IPv4-mapped entry, to its 6-byte form).
func FuzzCompactPeers(f *testing.F) {
	f.Add([]byte("\x7f\x00\x00\x01\x1a\xe1"), false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		size := CompactPeerV4Len
		if v6 {
			size = CompactPeerV6Len
		}
		for _, m := range []Mapped{RefuseMapped, UnmapMapped} {
			peers, err := ParseCompactPeers(data, v6, 0, m)
			if len(data)%size != 0 {
				if !errors.Is(err, ErrCompactPeers) {
					t.Fatalf("%d bytes as %d-byte entries: %v", len(data), size, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(peers) > len(data)/size {
				t.Fatalf("%d peers from %d entries", len(peers), len(data)/size)
			}
			for _, p := range peers {
				if p.Port() == 0 || p.Addr().IsUnspecified() || p.Addr().IsMulticast() || p.Addr().Is4In6() {
					t.Fatalf("unusable peer %v returned", p)
				}
				enc := AppendCompactPeer(nil, p)
				found := false
				for i := 0; i+size <= len(data); i += size {
					e := data[i : i+size]
					if string(e) == string(enc) || (len(e) == CompactPeerV6Len && string(e[12:]) == string(enc) && m == UnmapMapped) {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("peer %v not in input", p)
				}
			}
		}
	})
}
