package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotorrentserver/engine/dht"
	"gotorrentserver/engine/state"
	"gotorrentserver/netio"
)

// dhtFlags are the DHT settings shared by serve and get. The DHT is off
// unless asked for, and it contacts only the bootstrap nodes given here (and
// nodes learned from them): nothing is built in.
type dhtFlags struct {
	enabled   bool
	addr      string
	bootstrap string
}

func (f *dhtFlags) register(fs interface {
	BoolVar(*bool, string, bool, string)
	StringVar(*string, string, string, string)
}) {
	fs.BoolVar(&f.enabled, "dht", false, "run a BEP 5 DHT node (off by default)")
	fs.StringVar(&f.addr, "dht-addr", "", "UDP address of the DHT node (default: the peer address, on the UDP socket it shares with UDP trackers, as libtorrent does; another address gives the DHT a socket of its own)")
	fs.StringVar(&f.bootstrap, "dht-bootstrap", "", "comma-separated host:port DHT nodes to join through (none built in)")
}

// shared tells whether the node runs on the peer port's UDP socket: when
// -dht-addr is not given or names the peer address itself, port included
// (a second socket could not bind that port anyway; port 0 asks for a
// socket of its own).
func (f *dhtFlags) shared(peerAddr string) bool {
	if !f.enabled {
		return false
	}
	_, port, _ := net.SplitHostPort(f.addr)
	return f.addr == "" || (f.addr == peerAddr && port != "0")
}

// start runs the node, on udp (the peer port's socket) or on -dht-addr,
// loading a saved routing table from stateDir when given; the returned
// stop saves it back. Without -dht it does nothing.
func (f *dhtFlags) start(stateDir, peerAddr string, udp *netio.UDP, logf func(string, ...any)) (*dht.Node, func(), error) {
	if !f.enabled {
		return nil, func() {}, nil
	}
	var boot []string
	for _, b := range strings.Split(f.bootstrap, ",") {
		if b = strings.TrimSpace(b); b != "" {
			boot = append(boot, b)
		}
	}
	cfg := dht.Config{Listen: f.addr, Bootstrap: boot, Logf: logf}
	if f.shared(peerAddr) {
		conn := udp.DHT()
		if conn == nil {
			return nil, nil, errors.New("the peer port's UDP socket is not open")
		}
		// The node speaks the peer address's family; a socket bound to
		// all addresses is dual-stack, so its own address does not say.
		cfg.Conn, cfg.IPv6 = conn, ipv6Host(peerAddr)
	}
	node, err := dht.New(cfg)
	if err != nil {
		if cfg.Conn != nil {
			cfg.Conn.Close()
		}
		return nil, nil, err
	}
	path := ""
	if stateDir != "" {
		path = filepath.Join(stateDir, "dht.dat")
		if b, err := os.ReadFile(path); err == nil {
			if err := node.Load(b); err != nil {
				logf("dht: %s unusable, starting the DHT afresh: %v", path, err)
			}
		}
	}
	if err := node.Start(); err != nil {
		node.Close()
		return nil, nil, err
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		node.Bootstrap(ctx)
	}()
	stop := func() {
		if path != "" {
			if b, err := node.Save(); err == nil {
				state.WriteFileAtomic(path, b, 0o600)
			}
		}
		node.Close()
	}
	return node, stop, nil
}

// ipv6Host tells whether addr's host is an IPv6 literal ("[::]:6881").
func ipv6Host(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().Is6()
}
