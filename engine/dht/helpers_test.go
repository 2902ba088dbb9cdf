package dht

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// startNode starts a node on 127.0.0.1 with settings for a loopback test
// network: many nodes share one IP, so same-IP entries are allowed and the
// per-IP limit is lifted unless the test sets its own.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.AllowSameIP = true
	if cfg.QueryRate == 0 {
		cfg.QueryRate = -1
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = time.Second
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = 10 * time.Second
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawClient is a bare UDP socket for speaking KRPC at a node by hand.
type rawClient struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawClient(t *testing.T, ip string) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn}
}

func (c *rawClient) send(to netip.AddrPort, m Msg) {
	c.t.Helper()
	b, err := EncodeMsg(&m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) sendRaw(to netip.AddrPort, b []byte) {
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next KRPC message, or ok=false after d.
func (c *rawClient) recv(d time.Duration) (Msg, bool) {
	c.t.Helper()
	buf := make([]byte, 4096)
	c.conn.SetReadDeadline(time.Now().Add(d))
	nr, _, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return Msg{}, false
	}
	m, err := ParseMsg(buf[:nr])
	if err != nil {
		c.t.Fatalf("node sent an unparsable packet: %v", err)
	}
	return m, true
}

// rpc sends a query and waits for the reply with its transaction id,
// answering nothing else.
func (c *rawClient) rpc(to netip.AddrPort, m Msg) Msg {
	c.t.Helper()
	m.Y = 'q'
	if m.T == nil {
		m.T = []byte("rc")
	}
	c.send(to, m)
	for {
		r, ok := c.recv(2 * time.Second)
		if !ok {
			c.t.Fatalf("no reply to %s", m.Q)
		}
		if string(r.T) == string(m.T) && r.Y != 'q' {
			return r
		}
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
