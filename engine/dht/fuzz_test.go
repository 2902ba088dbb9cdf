package dht

import (
	"errors"
	"net"
	"reflect"
	"testing"
)

// FuzzKRPC: ParseMsg never panics; what it accepts encodes, and the
// encoding parses back to the same message. Every input is also fed to a
// live node's packet handler, which must survive it (replies go to a
// socket of ours that nobody reads).
func FuzzKRPC(f *testing.F) {
	n, err := New(Config{Listen: "127.0.0.1:0", QueryRate: -1, AllowSameIP: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := n.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sink.Close() })
	from := sink.LocalAddr().(*net.UDPAddr).AddrPort()

	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMsg(in)
		n.handlePacket(in, from)
		if err != nil {
			if !errors.Is(err, ErrBadPacket) && !errors.Is(err, ErrBadQuery) && !errors.Is(err, ErrUnknownMethod) {
				t.Fatalf("unclassified error %v", err)
			}
			if !errors.Is(err, ErrBadPacket) && len(m.T) > maxTxIDLen {
				t.Fatalf("oversized transaction id kept for an error reply")
			}
			return
		}
		out, err := EncodeMsg(&m)
		if err != nil {
			t.Fatalf("cannot encode parsed %+v: %v", m, err)
		}
		again, err := ParseMsg(out)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip:\n first %+v\nsecond %+v, %v", m, again, err)
		}
		for _, v := range m.R.Values {
			if v.Port() == 0 || !v.Addr().IsValid() {
				t.Fatalf("unusable peer %v accepted", v)
			}
		}
	})
}
