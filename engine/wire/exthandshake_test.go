package wire

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"
)

func sameExt(a, b ExtHandshake) bool {
	return maps.Equal(a.M, b.M) && a.V == b.V && a.Port == b.Port && a.ReqQ == b.ReqQ &&
		a.YourIP == b.YourIP && a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 &&
		a.MetadataSize == b.MetadataSize
}

func TestExtHandshakeRoundTrip(t *testing.T) {
	cases := []ExtHandshake{
		{M: map[string]int{}},
		{
			M:            map[string]int{"ut_metadata": 2, "ut_pex": 1, "lt_donthave": 0},
			V:            "GoTorrentServer 0.0.0.1",
			Port:         51413,
			ReqQ:         500,
			YourIP:       netip.MustParseAddr("203.0.113.7"),
			IPv4:         netip.MustParseAddr("198.51.100.1"),
			IPv6:         netip.MustParseAddr("2001:db8::1"),
			MetadataSize: 31337,
		},
		{M: map[string]int{"x": 255}, YourIP: netip.MustParseAddr("2001:db8::2")},
	}
	for _, want := range cases {
		b, err := EncodeExtHandshake(want)
		if err != nil {
			t.Fatalf("encode %+v: %v", want, err)
		}
		got, err := ParseExtHandshake(b)
		if err != nil {
			t.Fatalf("parse %q: %v", b, err)
		}
		if !sameExt(got, want) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", b, got, want)
		}
	}
}

func TestEncodeExtHandshakeWireForm(t *testing.T) {
	b, err := EncodeExtHandshake(ExtHandshake{
		M: map[string]int{"ut_pex": 1, "ut_metadata": 2}, Port: 6881,
		YourIP: netip.MustParseAddr("127.0.0.1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Sorted keys; yourip in the 4-byte compact form.
	want := "d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e6:yourip4:\x7f\x00\x00\x01e"
	if string(b) != want {
		t.Fatalf("got %q\nwant %q", b, want)
	}
}

func TestParseRealWorldExtHandshakes(t *testing.T) {
	// Shapes sent by common clients, typed in by hand from BEP 10 / 9 / 11.
	lt := "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei5321e4:reqqi500e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e"
	h, err := ParseExtHandshake([]byte(lt))
	if err != nil {
		t.Fatal(err)
	}
	if h.M["ut_metadata"] != 2 || h.M["ut_pex"] != 1 || len(h.M) != 6 || h.V != "libtorrent/2.0.8.0" ||
		h.ReqQ != 500 || h.MetadataSize != 5321 || h.YourIP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("libtorrent-style handshake parsed as %+v", h)
	}
	// Transmission sends e, p, v with a UTF-8 name and IPv6 yourip.
	tr := "d1:ei1e1:md6:ut_pexi1ee1:pi51413e1:v17:Transmission 3.006:yourip16:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05e"
	h, err = ParseExtHandshake([]byte(tr))
	if err != nil {
		t.Fatal(err)
	}
	if h.Port != 51413 || h.V != "Transmission 3.00" || h.YourIP != netip.MustParseAddr("2001:db8::5") {
		t.Fatalf("Transmission-style handshake parsed as %+v", h)
	}
}

func TestParseExtHandshakeLenient(t *testing.T) {
	// Wrong types and impossible values inside the dict are ignored.
	in := "d1:md1:ai1e1:bi256e1:ci-1e1:d3:str0:i3ee1:p5:hello4:reqqi-5e13:metadata_sizei0e" +
		"6:yourip5:abcde4:ipv416:aaaaaaaaaaaaaaaa4:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04" +
		"7:unknownld1:xli1eeee1:vi42ee"
	h, err := ParseExtHandshake([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := ExtHandshake{M: map[string]int{"a": 1}}
	if !sameExt(h, want) {
		t.Fatalf("got %+v, want only m.a", h)
	}
	h, _ = ParseExtHandshake([]byte("d1:pi70000e4:reqqi99999999e6:yourip16:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x0a\x00\x00\x01e"))
	if h.Port != 0 || h.ReqQ != MaxReqQ || h.YourIP != netip.MustParseAddr("10.0.0.1") || h.M != nil {
		t.Fatalf("got %+v: want port dropped, reqq clamped, v4-mapped yourip unmapped", h)
	}
}

func TestParseExtHandshakeSanitisesClient(t *testing.T) {
	name := "evil\r\nINFO fake log line\x1b[31m\xff"
	h, err := ParseExtHandshake(fmt.Appendf(nil, "d1:v%d:%se", len(name), name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(h.V, "\r\n\x1b") || !strings.HasPrefix(h.V, "evil??INFO") || !strings.HasSuffix(h.V, "\uFFFD") {
		t.Fatalf("v not sanitised: %q", h.V)
	}
	long := strings.Repeat("é", MaxClientLen) // 2 bytes each
	h, _ = ParseExtHandshake(fmt.Appendf(nil, "d1:v%d:%se", len(long), long))
	if len(h.V) > MaxClientLen || len(h.V) < MaxClientLen-1 || !strings.HasPrefix(long, h.V) {
		t.Fatalf("long v kept as %d bytes %q", len(h.V), h.V)
	}
}

func TestParseExtHandshakeHostile(t *testing.T) {
	var many strings.Builder
	many.WriteString("d1:md")
	for i := range MaxExtMessages + 1 {
		fmt.Fprintf(&many, "4:x%03di1e", i)
	}
	many.WriteString("ee")
	deep := strings.Repeat("l", 20) + strings.Repeat("e", 20)
	cases := map[string]string{
		"empty":             "",
		"not a dict":        "li1ee",
		"string":            "4:spam",
		"truncated":         "d1:md6:ut_pexi1e",
		"trailing bytes":    "d1:md6:ut_pexi1eeeXX",
		"huge string len":   "d1:v4294967296:xe",
		"deep nesting":      "d1:x" + deep + "e",
		"duplicate key":     "d1:pi1e1:pi2ee",
		"too many names":    many.String(),
		"oversized":         "d1:v" + fmt.Sprint(MaxExtendedLen) + ":" + strings.Repeat("a", MaxExtendedLen) + "e",
		"leading zero int":  "d1:pi01ee",
		"negative zero int": "d1:pi-0ee",
	}
	for name, in := range cases {
		if _, err := ParseExtHandshake([]byte(in)); !errors.Is(err, ErrBadExtHandshake) {
			t.Errorf("%s: got %v, want ErrBadExtHandshake", name, err)
		}
	}
}

func TestParseExtHandshakeDoesNotAliasPayload(t *testing.T) {
	payload := []byte("d1:md6:ut_pexi1ee1:v3:abce")
	h, err := ParseExtHandshake(payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload { // the connection reuses its ExtPayload buffer
		payload[i] = 'z'
	}
	if h.M["ut_pex"] != 1 || len(h.M) != 1 || h.V != "abc" {
		t.Fatalf("result changed with its input: %+v", h)
	}
}

func TestEncodeExtHandshakeRejects(t *testing.T) {
	tooMany := map[string]int{}
	for i := range MaxExtMessages + 1 {
		tooMany[fmt.Sprint("x", i)] = 1
	}
	cases := map[string]ExtHandshake{
		"id 256":         {M: map[string]int{"a": 256}},
		"negative id":    {M: map[string]int{"a": -1}},
		"empty name":     {M: map[string]int{"": 1}},
		"too many":       {M: tooMany},
		"port 65536":     {Port: 65536},
		"negative reqq":  {ReqQ: -1},
		"negative size":  {MetadataSize: -1},
		"ipv4 holds v6":  {IPv4: netip.MustParseAddr("::1")},
		"ipv6 holds v4":  {IPv6: netip.MustParseAddr("10.0.0.1")},
		"ipv6 is mapped": {IPv6: netip.MustParseAddr("::ffff:10.0.0.1")},
	}
	for name, h := range cases {
		if _, err := EncodeExtHandshake(h); !errors.Is(err, ErrBadExtHandshake) {
			t.Errorf("%s: got %v, want ErrBadExtHandshake", name, err)
		}
	}
}
