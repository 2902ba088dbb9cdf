package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gotorrentserver/metainfo"
)

func TestHandshakeRoundTrip(t *testing.T) {
	h := Handshake{
		Reserved: DefaultReserved(true),
		InfoHash: metainfo.Hash{1, 2, 3, 19: 0xff},
		PeerID:   [20]byte([]byte("-GT0001-abcdefghijkl")),
	}
	b := AppendHandshake(nil, h)
	if len(b) != HandshakeLen || HandshakeLen != 68 {
		t.Fatalf("handshake is %d bytes (HandshakeLen %d), want 68", len(b), HandshakeLen)
	}
	if b[0] != 19 || string(b[1:20]) != "BitTorrent protocol" {
		t.Fatalf("bad pstr: %q", b[:20])
	}
	if !bytes.Equal(b[28:48], h.InfoHash[:]) || !bytes.Equal(b[48:], h.PeerID[:]) {
		t.Fatalf("infohash or peer id misplaced: % x", b)
	}
	got, err := ParseHandshake(b)
	if err != nil || got != h {
		t.Fatalf("ParseHandshake = %+v, %v; want %+v", got, err, h)
	}
	b[30] = 0 // the result must not alias the input
	if got != h {
		t.Fatal("parsed handshake aliases its input")
	}
}

func TestHandshakeRejects(t *testing.T) {
	good := AppendHandshake(nil, Handshake{})
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrBadHandshake},
		{"67 bytes", good[:67], ErrBadHandshake},
		{"69 bytes", append(bytes.Clone(good), 0), ErrBadHandshake},
		{"pstrlen 18", append([]byte{18}, good[1:]...), ErrBadProtocol},
		{"lower-case pstr", append([]byte{19}, append([]byte("bittorrent protocol"), good[20:]...)...), ErrBadProtocol},
		{"HTTP request", []byte(strings.Repeat("GET / HTTP/1.1\r\n", 5)[:68]), ErrBadProtocol},
		{"MSE-looking noise", bytes.Repeat([]byte{0x9c}, 68), ErrBadProtocol},
	}
	for _, c := range cases {
		if _, err := ParseHandshake(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReservedBits(t *testing.T) {
	// libtorrent 2.0 sends these reserved bytes (extension, fast, DHT bits).
	lt := Reserved{0, 0, 0, 0, 0, 0x10, 0, 0x05}
	if !lt.SupportsExtended() || !lt.SupportsFast() || !lt.SupportsDHT() {
		t.Fatalf("libtorrent bits not recognised: % x", lt)
	}
	if DefaultReserved(true) != lt {
		t.Fatalf("DefaultReserved(true) = % x, want % x", DefaultReserved(true), lt)
	}
	r := DefaultReserved(false)
	if r.SupportsDHT() || !r.SupportsFast() || !r.SupportsExtended() {
		t.Fatalf("DefaultReserved(false) = % x", r)
	}
	// Setting and clearing leave unrelated bits alone.
	r = Reserved{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	r.SetExtended(false)
	r.SetFast(false)
	r.SetDHT(false)
	if r != (Reserved{0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0xff, 0xfa}) {
		t.Fatalf("clearing bits touched others: % x", r)
	}
	var none Reserved
	if none.SupportsExtended() || none.SupportsFast() || none.SupportsDHT() {
		t.Fatal("zero reserved claims support")
	}
}

func TestNewPeerID(t *testing.T) {
	a := NewPeerID(nil)
	b := NewPeerID(nil)
	if a == b {
		t.Fatal("two peer ids are equal")
	}
	for _, id := range [][20]byte{a, b} {
		if !strings.HasPrefix(string(id[:]), "-GT0001-") {
			t.Fatalf("peer id %q lacks our prefix", id)
		}
		for _, c := range id[8:] {
			if !strings.ContainsRune(peerIDAlphabet, rune(c)) {
				t.Fatalf("peer id %q has byte %#x outside the URL-safe alphabet", id, c)
			}
		}
	}
	// Deterministic for a given reader: tests elsewhere can inject one.
	seed := bytes.Repeat([]byte{7}, 12)
	if NewPeerID(bytes.NewReader(seed)) != NewPeerID(bytes.NewReader(seed)) {
		t.Fatal("same random bytes gave different ids")
	}
	// A reader that runs dry is topped up, not left as zeros.
	short := NewPeerID(bytes.NewReader([]byte{0, 0}))
	if bytes.Count(short[10:], []byte{'0'}) == 10 {
		t.Fatalf("short reader left a predictable tail: %q", short)
	}
	if got := ClientName(a); got != "GoTorrentServer 0.0.0.1" {
		t.Fatalf("ClientName(own id) = %q", got)
	}
}

func TestClientName(t *testing.T) {
	cases := map[string]string{
		"-LT2080-abcdefghijkl":     "libtorrent (Rasterbar) 2.0.8",
		"-LT20A0-abcdefghijkl":     "libtorrent (Rasterbar) 2.0.10",
		"-lt0D80-abcdefghijkl":     "libTorrent (rakshasa) 0.13.8",
		"-TR3000-abcdefghijkl":     "Transmission 3.00",
		"-TR2940-abcdefghijkl":     "Transmission 2.94",
		"-TR4060-abcdefghijkl":     "Transmission 4.0.6",
		"-qB4630-abcdefghijkl":     "qBittorrent 4.6.3",
		"-UT355W-abcdefghijkl":     "µTorrent 3.5.5",
		"-DE211s-abcdefghijkl":     "Deluge 2.1.1",
		"-ZZ1234-abcdefghijkl":     "unknown (ZZ) 1.2.3.4",
		"A2-1-36-0-abcdefghij":     "aria2 1.36.0",
		"A2-x-36-0-abcdefghij":     "aria2",
		"M7-4-3--abcdefghijkl":     "",
		"\x00\x00\x00\x00\x00\x00": "",
		"-L\n2080-abcdefghijkl":    "",
		"-LT20\xff0-abcdefghijk":   "",
	}
	for id, want := range cases {
		var b [20]byte
		copy(b[:], id)
		if got := ClientName(b); got != want {
			t.Errorf("ClientName(%q) = %q, want %q", id, got, want)
		}
	}
}
