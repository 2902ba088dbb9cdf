package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"gotorrentserver/metainfo"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestPexRoundTrip(t *testing.T) {
	in := Pex{
		Added: []PexPeer{
			{Addr: ap("10.0.0.1:6881"), Flags: PexSeed | PexReachable},
			{Addr: ap("[2001:db8::1]:51413"), Flags: PexEncryption},
			{Addr: ap("192.168.1.9:1"), Flags: 0},
		},
		Dropped: []netip.AddrPort{ap("10.0.0.2:6882"), ap("[2001:db8::2]:6881")},
	}
	enc := AppendPex(nil, in)
	// Canonical bencode with libtorrent's six keys.
	if err := metainfo.Validate(enc, metainfo.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"5:added", "7:added.f", "6:added6", "8:added6.f", "7:dropped", "8:dropped6"} {
		if !bytes.Contains(enc, []byte(k)) {
			t.Fatalf("key %s missing in %q", k, enc)
		}
	}
	got, err := ParsePex(enc)
	if err != nil {
		t.Fatal(err)
	}
	// Parsing returns the IPv4 family first.
	wantAdded := []PexPeer{in.Added[0], in.Added[2], in.Added[1]}
	if !slices.Equal(got.Added, wantAdded) || !slices.Equal(got.Dropped, in.Dropped) {
		t.Fatalf("got %+v", got)
	}
}

func TestParsePexLenient(t *testing.T) {
	v4 := func(ip string, port uint16) string {
		a := netip.MustParseAddr(ip).As4()
		return string(binary.BigEndian.AppendUint16(a[:], port))
	}
	mapped := netip.MustParseAddr("::ffff:1.2.3.4").As16()
	cases := []struct {
		name, in string
		added    []PexPeer
		dropped  []netip.AddrPort
	}{
		{"bad-length-ignored", "d5:added7:1234567" + "7:dropped6:" + v4("1.1.1.1", 80) + "e",
			nil, []netip.AddrPort{ap("1.1.1.1:80")}},
		{"flags-count-mismatch", "d5:added12:" + v4("1.1.1.1", 80) + v4("2.2.2.2", 81) + "7:added.f1:\x02e",
			[]PexPeer{{Addr: ap("1.1.1.1:80")}, {Addr: ap("2.2.2.2:81")}}, nil},
		{"port-zero-skipped-flags-kept", "d5:added12:" + v4("1.1.1.1", 0) + v4("2.2.2.2", 81) + "7:added.f2:\x01\x10e",
			[]PexPeer{{Addr: ap("2.2.2.2:81"), Flags: 0x10}}, nil},
		{"unspecified-and-mapped", "d5:added6:" + v4("0.0.0.0", 80) + "6:added618:" + string(mapped[:]) + "\x00\x50e", nil, nil},
		{"wrong-types", "d5:addedi5e7:droppedle6:added6d1:ai1eee", nil, nil},
		{"empty", "de", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParsePex([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Added, c.added) || !slices.Equal(got.Dropped, c.dropped) {
				t.Fatalf("got %+v", got)
			}
		})
	}
	for _, bad := range []string{"", "le", "d5:added", "i1e", "d5:added6:123456ee"} {
		if _, err := ParsePex([]byte(bad)); !errors.Is(err, ErrBadPex) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestPexBounds(t *testing.T) {
	var many Pex
	for i := 0; i < 3*MaxPexPeers; i++ {
		many.Added = append(many.Added, PexPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1000)})
		many.Dropped = append(many.Dropped, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1000))
	}
	enc := AppendPex(nil, many)
	got, err := ParsePex(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Added) != MaxPexPeers || len(got.Dropped) != MaxPexPeers {
		t.Fatalf("encoded %d added, %d dropped; want %d each", len(got.Added), len(got.Dropped), MaxPexPeers)
	}
	// A hand-made oversized message is cut on parsing, not rejected.
	var added []byte
	for i := 0; i < 1000; i++ {
		added = append(added, 10, 2, byte(i>>8), byte(i), 0, 80)
	}
	got, err = ParsePex([]byte(fmt.Sprintf("d5:added%d:%se", len(added), added)))
	if err != nil || len(got.Added) != MaxPexPeers {
		t.Fatalf("parsed %d added, %v", len(got.Added), err)
	}
}
