package utp

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzUTPPacket: no datagram makes the parser or a connection panic. Each
// input is parsed, then delivered to an established connection and to an
// endpoint with none, with its connection id and its type as sent and as
// those of the connection, so that the fuzzer reaches the state machine.
func FuzzUTPPacket(f *testing.F) {
	f.Add(packet(stData, 1, 7, 9, []byte{1, 0, 0, 128}, []byte("hello")))
	f.Add(packet(stState, 1, 7, 9, []byte{0xff, 0xff, 0xff, 0xff}, nil))
	f.Add(packet(stFin, 1, 7, 9, nil, nil))
	f.Add(packet(stSyn, 1, 7, 0, nil, nil))
	f.Add(packet(stReset, 1, 7, 0, nil, nil))
	f.Add([]byte{0x21, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := parse(b); err == nil && len(h.payload)+len(h.sack) > len(b) {
			t.Fatal("parsed past the datagram")
		}
		n := newSimNet(&testing.T{}, 1)
		recv := &sink{}
		srv := n.endpoint("10.0.0.2:1", Config{Accept: acceptInto(recv)})
		a := n.endpoint("10.0.0.1:1", Config{})
		s := &sink{toWrite: []byte("some data")}
		a.dial(netip.MustParseAddrPort("10.0.0.2:1"), s)
		for i := 0; i < 50 && recv.got.Len() == 0; i++ {
			n.step()
		}
		if recv.conn == nil {
			t.Fatal("no connection")
		}
		from := netip.MustParseAddrPort("10.0.0.1:1")
		srv.receive(b, from)
		if len(b) >= headerLen {
			c := append([]byte(nil), b...)
			c[2], c[3] = byte(recv.conn.recvID>>8), byte(recv.conn.recvID)
			srv.receive(c, from)
			c[0] = c[0]&0x0f | stData<<4
			srv.receive(c, from)
		}
		for i := 0; i < 20; i++ {
			n.now += 100 * time.Millisecond
			n.step()
		}
	})
}
