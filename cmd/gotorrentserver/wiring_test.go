package main

import (
	"testing"

	"gotorrentserver/engine"
)

// With -dht and no -dht-addr the node runs on the peer port's UDP socket;
// another -dht-addr gives it a socket of its own.
func TestBuildStackDHTSocket(t *testing.T) {
	quiet := func(string, ...any) {}
	for _, tc := range []struct {
		addr   string
		shared bool
	}{{"", true}, {"127.0.0.1:0", false}} {
		st, err := buildStack(stackConfig{
			PeerAddr: "127.0.0.1:0", DHT: dhtFlags{enabled: true, addr: tc.addr}, Logf: quiet,
			Engine: engine.Config{Logf: quiet},
		})
		if err != nil {
			t.Fatal(err)
		}
		u := st.peers.UDP()
		if u == nil || u.Port() != st.peers.Port() {
			t.Fatalf("-dht-addr %q: no UDP socket on the peer port %d", tc.addr, st.peers.Port())
		}
		// The socket's DHT route is taken exactly when the node shares it.
		r := u.DHT()
		if (r == nil) != tc.shared {
			t.Fatalf("-dht-addr %q: shared %v, want %v", tc.addr, r == nil, tc.shared)
		}
		if r != nil {
			r.Close()
		}
		if err := st.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
