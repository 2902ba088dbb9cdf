package dht

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

func TestServerAnnounceAndGetPeers(t *testing.T) {
	n := startNode(t, Config{})
	to := n.LocalAddr()
	c := newRawClient(t, "127.0.0.1")
	other := newRawClient(t, "127.0.0.2")
	ih := metainfo.Hash(RandomNodeID())
	me := RandomNodeID()

	r := c.rpc(to, Msg{Q: MethodGetPeers, A: Args{ID: me, InfoHash: ih}})
	if r.Y != 'r' || r.R.ID != n.ID() || len(r.R.Token) == 0 || len(r.R.Values) != 0 {
		t.Fatalf("get_peers reply %+v", r)
	}
	if r.IP != c.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort() {
		t.Fatalf("reply ip %v is not our address", r.IP)
	}
	tok := r.R.Token

	bad := c.rpc(to, Msg{Q: MethodAnnouncePeer, A: Args{ID: me, InfoHash: ih, Port: 1000, Token: []byte("forged!!")}})
	if bad.Y != 'e' || bad.E.Code != ErrCodeProtocol {
		t.Fatalf("forged token: %+v", bad)
	}
	// A token is bound to the IP it was issued to.
	stolen := other.rpc(to, Msg{Q: MethodAnnouncePeer, A: Args{ID: me, InfoHash: ih, Port: 1000, Token: tok}})
	if stolen.Y != 'e' {
		t.Fatalf("token accepted from another IP: %+v", stolen)
	}
	if ok := c.rpc(to, Msg{Q: MethodAnnouncePeer, A: Args{ID: me, InfoHash: ih, Port: 1000, Token: tok}}); ok.Y != 'r' {
		t.Fatalf("announce: %+v", ok)
	}
	if ok := c.rpc(to, Msg{Q: MethodAnnouncePeer, A: Args{ID: me, InfoHash: ih, ImpliedPort: true, Token: tok}}); ok.Y != 'r' {
		t.Fatalf("implied-port announce: %+v", ok)
	}
	r = c.rpc(to, Msg{Q: MethodGetPeers, A: Args{ID: me, InfoHash: ih}})
	src := c.conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1000"), src}
	slices.SortFunc(r.R.Values, netip.AddrPort.Compare)
	slices.SortFunc(want, netip.AddrPort.Compare)
	if !slices.Equal(r.R.Values, want) {
		t.Fatalf("values %v, want %v", r.R.Values, want)
	}
}

func TestServerErrors(t *testing.T) {
	n := startNode(t, Config{})
	to := n.LocalAddr()
	c := newRawClient(t, "127.0.0.1")
	me := RandomNodeID()

	if r := c.rpc(to, Msg{Q: "vote", A: Args{ID: me}}); r.Y != 'e' || r.E.Code != ErrCodeMethod {
		t.Fatalf("unknown method: %+v", r)
	}
	c.sendRaw(to, []byte("d1:ad2:id3:abce1:q4:ping1:t2:xx1:y1:qe"))
	if r, ok := c.recv(2 * time.Second); !ok || r.Y != 'e' || r.E.Code != ErrCodeProtocol || string(r.T) != "xx" {
		t.Fatalf("bad arguments: %+v, %v", r, ok)
	}
	for _, junk := range []string{"", "garbage", "d1:t2:xxe", "i5e", "d1:t2:xx1:y1:qe", "d1:t2:xx1:y1:r1:rdee"} {
		c.sendRaw(to, []byte(junk))
	}
	if r, ok := c.recv(300 * time.Millisecond); ok {
		t.Fatalf("reply to a malformed packet: %+v", r)
	}
	// A reply nobody asked for is dropped, and adds nothing to the table.
	c.send(to, Msg{T: []byte("zz"), Y: 'r', R: Reply{ID: me}})
	time.Sleep(50 * time.Millisecond)
	if s := n.Stats(); s.Nodes != 0 || s.BadPackets < 6 {
		t.Fatalf("stats after junk: %+v", s)
	}
	// The node still works.
	if r := c.rpc(to, Msg{Q: MethodPing, A: Args{ID: me}}); r.Y != 'r' || r.R.ID != n.ID() {
		t.Fatalf("ping after junk: %+v", r)
	}
}

func TestServerRateLimit(t *testing.T) {
	n := startNode(t, Config{QueryRate: 1, QueryBurst: 5})
	c := newRawClient(t, "127.0.0.1")
	me := RandomNodeID()
	for i := 0; i < 20; i++ {
		c.send(n.LocalAddr(), Msg{T: []byte{byte(i)}, Y: 'q', Q: MethodPing, A: Args{ID: me}})
	}
	replies := 0
	for {
		m, ok := c.recv(300 * time.Millisecond)
		if !ok {
			break
		}
		if m.Y == 'r' { // not the node's own ping verifying us
			replies++
		}
	}
	if replies != 5 || n.Stats().QueriesLimited != 15 {
		t.Fatalf("%d replies, %d limited; want the burst of 5 and 15 dropped", replies, n.Stats().QueriesLimited)
	}
}
