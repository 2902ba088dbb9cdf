package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"gotorrentserver/engine"
	"gotorrentserver/netio"
)

// stack is the engine and its network layer, as serve, get and fetch run
// them.
type stack struct {
	client  *engine.Client
	peers   *netio.Server
	stopDHT func()
}

// stackConfig is what differs between the commands.
type stackConfig struct {
	PeerAddr   string
	DHT        dhtFlags
	Encryption netio.Encryption
	StateDir   string // keeps the DHT's routing table; "" keeps none
	Engine     engine.Config
	Logf       func(string, ...any) // the network layer's and the DHT's notices; nil: log.Printf and none
	// Logger, when set, takes every line: the engine's (unless Engine
	// sets its own), and the network layer's and the DHT's in place of
	// Logf, each with its component attribute.
	Logger *slog.Logger
}

// buildStack builds everything in dependency order, each part complete
// before the next needs it, with no setter called afterwards:
//
//  1. the network layer binds the peer port and the UDP socket on its
//     number, so the port is known and nothing serves yet;
//  2. the DHT node starts on that UDP socket (with -dht);
//  3. the engine is built with the port, the network layer as its dialer
//     and listener status, the DHT, and the UDP socket for trackers;
//  4. the network layer starts serving the engine: event loops, accepting.
func buildStack(cfg stackConfig) (*stack, error) {
	if l := cfg.Logger; l != nil {
		cfg.Logf = logfTo(l, "netio", slog.LevelWarn)
		if cfg.Engine.Logger == nil {
			cfg.Engine.Logger = l.With("component", "engine")
		}
	}
	peers, err := netio.Listen(netio.Config{
		ListenAddr: cfg.PeerAddr, DHT: cfg.DHT.enabled, UDPRequired: cfg.DHT.shared(cfg.PeerAddr),
		Encryption: cfg.Encryption, Logf: cfg.Logf,
	})
	if err != nil {
		return nil, err
	}
	udp := peers.UDP()
	dhtLogf := cfg.Logf
	if cfg.Logger != nil {
		dhtLogf = logfTo(cfg.Logger, "dht", slog.LevelWarn)
	}
	node, stopDHT, err := cfg.DHT.start(cfg.StateDir, cfg.PeerAddr, udp, dhtLogf)
	if err != nil {
		peers.Stop()
		udp.Close()
		return nil, fmt.Errorf("DHT: %w", err)
	}
	ecfg := cfg.Engine
	ecfg.ListenPort, ecfg.Dialer, ecfg.Listener = peers.Port(), peers, peers
	if node != nil {
		ecfg.DHT = node
	}
	if udp != nil {
		ecfg.Tracker.Socket = udp
	}
	client := engine.New(ecfg)
	if err := peers.Serve(client); err != nil {
		peers.Stop()
		client.Close()
		stopDHT()
		udp.Close()
		return nil, err
	}
	return &stack{client: client, peers: peers, stopDHT: stopDHT}, nil
}

// encryptionFlag is -encryption, for every command that talks to peers.
type encryptionFlag struct{ netio.Encryption }

func (f *encryptionFlag) register(fs *flag.FlagSet) {
	fs.Var(f, "encryption", "peer connection encryption (MSE/PE), `mode`: prefer (the default: accept both; dial encrypted first, then plaintext for a peer that refuses it), require (RC4 only: plaintext peers are refused) or disable (plaintext only)")
}

func (f *encryptionFlag) String() string { return f.Encryption.String() }

func (f *encryptionFlag) Set(s string) error {
	e, err := netio.ParseEncryption(s)
	if err != nil {
		return errors.New("want prefer, require or disable")
	}
	f.Encryption = e
	return nil
}

// stop takes the stack down in the reverse order: no new peers, sessions
// announce stopped (over the UDP socket too), the DHT saves its table,
// then the UDP socket closes.
func (s *stack) stop() error {
	err := s.peers.Stop()
	s.client.Close()
	s.stopDHT()
	return errors.Join(err, s.peers.UDP().Close())
}
