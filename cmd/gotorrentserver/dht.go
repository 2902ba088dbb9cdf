package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gotorrentserver/engine/dht"
	"gotorrentserver/engine/state"
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
}, defAddr string) {
	fs.BoolVar(&f.enabled, "dht", false, "run a BEP 5 DHT node (off by default)")
	fs.StringVar(&f.addr, "dht-addr", defAddr, "UDP address of the DHT node")
	fs.StringVar(&f.bootstrap, "dht-bootstrap", "", "comma-separated host:port DHT nodes to join through (none built in)")
}

// start runs the node, loading a saved routing table from stateDir when
// given; the returned stop saves it back.
func (f *dhtFlags) start(stateDir string, logf func(string, ...any)) (*dht.Node, func(), error) {
	if !f.enabled {
		return nil, func() {}, nil
	}
	var boot []string
	for _, b := range strings.Split(f.bootstrap, ",") {
		if b = strings.TrimSpace(b); b != "" {
			boot = append(boot, b)
		}
	}
	node, err := dht.New(dht.Config{Listen: f.addr, Bootstrap: boot, Logf: logf})
	if err != nil {
		return nil, nil, err
	}
	path := ""
	if stateDir != "" {
		path = filepath.Join(stateDir, "dht.dat")
		if b, err := os.ReadFile(path); err == nil {
			if err := node.Load(b); err != nil {
				logf("gotorrentserver: %s unusable, starting the DHT afresh: %v", path, err)
			}
		}
	}
	if err := node.Start(); err != nil {
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
