package dht

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"gotorrentserver/metainfo"
)

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func idOf(b byte) NodeID {
	var id NodeID
	for i := range id {
		id[i] = b
	}
	return id
}

func TestKRPCRoundTrip(t *testing.T) {
	msgs := []Msg{
		{T: []byte("aa"), Y: 'q', Q: MethodPing, A: Args{ID: idOf(1)}, V: []byte("GS01")},
		{T: []byte("ab"), Y: 'q', Q: MethodFindNode, A: Args{ID: idOf(1), Target: idOf(2)}},
		{T: []byte("ac"), Y: 'q', Q: MethodGetPeers, A: Args{ID: idOf(1), InfoHash: metainfo.Hash(idOf(3))}, RO: true},
		{T: []byte("ad"), Y: 'q', Q: MethodAnnouncePeer, A: Args{ID: idOf(1), InfoHash: metainfo.Hash(idOf(3)), Port: 6881, Token: []byte("tok")}},
		{T: []byte("ae"), Y: 'q', Q: MethodAnnouncePeer, A: Args{ID: idOf(1), InfoHash: metainfo.Hash(idOf(3)), Port: 0, ImpliedPort: true, Token: []byte("tok")}},
		{T: []byte("af"), Y: 'r', R: Reply{ID: idOf(4),
			Nodes:  []NodeInfo{{idOf(5), mustAP("10.0.0.5:6881")}, {idOf(6), mustAP("10.0.0.6:1")}},
			Nodes6: []NodeInfo{{idOf(7), mustAP("[2001:db8::7]:6881")}},
			Values: []netip.AddrPort{mustAP("1.2.3.4:5"), mustAP("[2001:db8::9]:80")},
			Token:  []byte("12345678")}, IP: mustAP("9.9.9.9:999")},
		{T: []byte("ag"), Y: 'e', E: RemoteError{Code: 203, Msg: "bad token"}},
	}
	for _, m := range msgs {
		b, err := EncodeMsg(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseMsg(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
		}
	}
}

// Messages as libtorrent 2.0.8 sends them (captured shape, keys it adds).
func TestKRPCParseForeign(t *testing.T) {
	xid := idOf('x')
	id := string(xid[:])
	q := "d1:ad2:id20:" + id + "9:info_hash20:" + id + "6:noseedi1e4:wantl2:n4ee1:q9:get_peers1:t2:\x00\x011:v4:LT\x02\x081:y1:qe"
	m, err := ParseMsg([]byte(q))
	if err != nil || m.Q != MethodGetPeers || m.A.InfoHash != metainfo.Hash(idOf('x')) || string(m.T) != "\x00\x01" {
		t.Fatalf("%+v, %v", m, err)
	}
	// A nodes string of the wrong length and odd values are skipped.
	r := "d1:rd2:id20:" + id + "5:nodes3:abc6:valuesl6:\x01\x02\x03\x04\x00\x505:shorti5ee5:token2:zze1:t2:aa1:y1:re"
	m, err = ParseMsg([]byte(r))
	if err != nil || m.R.Nodes != nil || len(m.R.Values) != 1 || m.R.Values[0] != mustAP("1.2.3.4:80") || string(m.R.Token) != "zz" {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestKRPCRejects(t *testing.T) {
	xid := idOf('x')
	id := string(xid[:])
	cases := map[string]error{
		"":                                       ErrBadPacket,
		"le":                                     ErrBadPacket,
		"d1:y1:qe":                               ErrBadPacket, // no t
		"d1:t2:aae":                              ErrBadPacket, // no y
		"d1:t2:aa1:y1:xe":                        ErrBadPacket,
		"d1:t2:aa1:y1:qe":                        ErrBadPacket, // query without q
		"d1:t2:aa1:y1:re":                        ErrBadPacket, // reply without id
		"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe": ErrBadQuery,
		"d1:ad2:id20:" + id + "e1:q9:find_node1:t2:aa1:y1:qe":                                                     ErrBadQuery,
		"d1:ad2:id20:" + id + "9:info_hash20:" + id + "4:porti1e5:token0:e1:q13:announce_peer1:t2:aa1:y1:qe":      ErrBadQuery,
		"d1:ad2:id20:" + id + "9:info_hash20:" + id + "4:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe": ErrBadQuery,
		"d1:ad2:id20:" + id + "9:info_hash20:" + id + "4:porti0e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe":     ErrBadQuery,
		"d1:ad2:id20:" + id + "e1:q3:put1:t2:aa1:y1:qe":                                                           ErrUnknownMethod,
		"d1:t33:123456789012345678901234567890123" + "1:y1:qe":                                                    ErrBadPacket,
	}
	for in, want := range cases {
		m, err := ParseMsg([]byte(in))
		if !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
		if (want == ErrBadQuery || want == ErrUnknownMethod) && string(m.T) != "aa" {
			t.Errorf("%q: transaction id lost for the error reply", in)
		}
	}
	big := make([]byte, MaxPacketSize+1)
	if _, err := ParseMsg(big); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("oversized packet: %v", err)
	}
}
