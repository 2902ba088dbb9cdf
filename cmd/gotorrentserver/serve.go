package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/state"
	"gotorrentserver/engine/wire"
	"gotorrentserver/httpapi"
)

// serveConfig is every setting of the daemon. Defaults are embedded; each has
// a flag and the main ones an environment variable (flags win).
type serveConfig struct {
	State, Downloads, PeerAddr, APIAddr, TokenFile string
	Token                                          string // from GTS_API_TOKEN only: never a flag (ps shows flags)
	NoAuth                                         bool
	MaxDown, MaxUp                                 int64 // KiB/s
	APIRate                                        int64 // KiB/s
	MaxPeers, MaxPeersPerTorrent, UnchokeSlots     int
	DHT                                            dhtFlags
	Encryption                                     encryptionFlag
	Profile                                        profileFlags
	// Global settings' start-up defaults; a saved settings.json wins over
	// them unless the flag is given (set lists the flags given).
	Global            engine.Global
	set               map[string]bool
	Log               logFlags
	MetricsPerTorrent bool
}

func parseServe(args []string, _ io.Writer) (*serveConfig, error) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&cfg.State, "state", env("GTS_STATE", "./gts-state"), "state folder: torrents, resume records, API token (env GTS_STATE)")
	fs.StringVar(&cfg.Downloads, "downloads", env("GTS_DOWNLOADS", "./downloads"), "download root; API paths resolve inside it (env GTS_DOWNLOADS)")
	fs.StringVar(&cfg.PeerAddr, "peer-addr", env("GTS_PEER_ADDR", "0.0.0.0:6881"), "address for BitTorrent peers (env GTS_PEER_ADDR)")
	fs.StringVar(&cfg.APIAddr, "api-addr", env("GTS_API_ADDR", "127.0.0.1:8080"), "address of the HTTP API (env GTS_API_ADDR)")
	fs.StringVar(&cfg.TokenFile, "token-file", "", "file holding the API bearer token (default: env GTS_API_TOKEN, else STATE/api-token, generated at first start)")
	fs.BoolVar(&cfg.NoAuth, "no-auth", false, "serve the API without a token (refused unless -api-addr is loopback)")
	fs.Int64Var(&cfg.MaxDown, "max-down", 0, "global download limit in KiB/s (0 = unlimited)")
	fs.Int64Var(&cfg.MaxUp, "max-up", 0, "global upload limit in KiB/s (0 = unlimited)")
	fs.Int64Var(&cfg.APIRate, "api-rate", httpapi.DefaultAPIRate>>10, "while peers transfer, API answers share this many KiB/s (256 KiB counted per request) so transfers come first (0 = unlimited)")
	fs.IntVar(&cfg.MaxPeers, "max-peers", 5000, "connections over all torrents")
	fs.IntVar(&cfg.MaxPeersPerTorrent, "max-peers-per-torrent", 80, "connections per torrent")
	fs.IntVar(&cfg.UnchokeSlots, "unchoke-slots", 0, "upload slots per torrent, the optimistic one included; 0 = automatic: as many over all torrents as fill the uplink")
	fs.IntVar(&cfg.Global.MaxActiveDownloads, "max-active-downloads", 0, "torrents downloading at once; the rest wait in state queued (0 = no limit)")
	fs.IntVar(&cfg.Global.MaxActiveSeeds, "max-active-seeds", 0, "torrents seeding at once; the rest wait in state queued (0 = no limit)")
	fs.Float64Var(&cfg.Global.RatioLimit, "ratio-limit", 0, "stop seeding a torrent at this upload/download ratio (0 = none)")
	fs.Int64Var(&cfg.Global.SeedTimeLimit, "seed-time-limit", 0, "stop seeding a torrent after this many minutes of seeding (0 = none)")
	fs.StringVar(&cfg.Global.LimitAction, "limit-action", "stop", "what a torrent reaching a ratio or seed-time limit does: stop or remove (its data is kept)")
	fs.StringVar(&cfg.Global.DefaultPath, "default-path", "", "folder, relative to the download root, for adds that name none")
	fs.BoolVar(&cfg.MetricsPerTorrent, "metrics-per-torrent", false, "/metrics shows each torrent's series too (six per torrent, labelled by infohash and name)")
	cfg.DHT.register(fs)
	cfg.Encryption.register(fs)
	cfg.Profile.register(fs)
	cfg.Log.register(fs, slog.LevelInfo)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gotorrentserver serve [flags]   (also: gotorrentserver with no arguments)")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErr(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if cfg.MaxDown < 0 || cfg.MaxUp < 0 || cfg.APIRate < 0 {
		return nil, usageErr(fs, "rates must not be negative")
	}
	cfg.Global.MaxDown, cfg.Global.MaxUp = cfg.MaxDown<<10, cfg.MaxUp<<10
	cfg.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.set[f.Name] = true })
	cfg.Token = os.Getenv("GTS_API_TOKEN")
	return cfg, nil
}

// apiToken finds the token: GTS_API_TOKEN, then -token-file, then the state
// folder's api-token, generated (mode 0600) on first start.
func (cfg *serveConfig) apiToken(log *slog.Logger) (string, error) {
	if cfg.NoAuth {
		return "", nil
	}
	if cfg.Token != "" {
		return cfg.Token, nil
	}
	path := cfg.TokenFile
	generate := path == ""
	if generate {
		path = filepath.Join(cfg.State, "api-token")
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("token file %s is empty", path)
		}
		return tok, nil
	case !errors.Is(err, os.ErrNotExist) || !generate:
		return "", err
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	tok := hex.EncodeToString(raw)
	if err := state.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info("generated an API token", "path", path)
	return tok, nil
}

func runServe(args []string, stdout io.Writer) error {
	cfg, err := parseServe(args, os.Stderr)
	if err != nil {
		return err
	}
	defer takeTerminal()()
	stopProfile := cfg.Profile.start()
	defer stopProfile()
	// Logs go to stderr, as a service manager expects; stdout stays free.
	// The last lines also stay in memory for the dashboard (GET /logs).
	ring := httpapi.NewLogRing(0)
	logger := slog.New(ring.Wrap(cfg.Log.logger(os.Stderr).Handler()))
	log := logger.With("component", "serve")
	d, err := startDaemon(cfg, logger, ring)
	if err != nil {
		return err
	}
	stopGC := make(chan struct{})
	defer close(stopGC)
	adaptGC(stopGC, d.client.PayloadRates)
	sig := make(chan os.Signal, 1)
	// SIGHUP (a closed terminal, or a service manager) stops cleanly too:
	// by default it would kill the daemon without flushing or announcing.
	// Caught before the ready line, so a Ctrl-C sent on seeing it stops
	// cleanly rather than killing the process.
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	log.Info(fmt.Sprintf("peers on %s, API on http://%s", d.peers.Addr(), d.api.Addr()),
		"peers", d.peers.Addr().String(), "api", d.api.Addr(), "torrents", len(d.client.Sessions()),
		"state", cfg.State, "downloads", d.downloads, "version", Version())
	s := <-sig
	log.Info("stopping", "signal", s.String())
	cfg.Profile.writeHeap()
	// Stop must finish within 5 s; a second signal or the deadline exits.
	go func() {
		select {
		case <-sig:
		case <-time.After(5 * time.Second):
		}
		log.Error("forced exit: not stopped within 5 s")
		os.Exit(1)
	}()
	d.stop()
	return nil
}

// daemon is a running serve: engine, peer network, API and state.
type daemon struct {
	downloads string // the download root, absolute
	*stack
	api   *httpapi.Server
	store *state.Store
}

// startDaemon starts it all; ring, if set, is what GET /logs reads.
func startDaemon(cfg *serveConfig, logger *slog.Logger, ring *httpapi.LogRing) (*daemon, error) {
	log := logger.With("component", "serve")
	store, err := state.Open(cfg.State, logfTo(logger, "state", slog.LevelError))
	started := time.Now()
	if err != nil {
		return nil, err
	}
	token, err := cfg.apiToken(log)
	if err != nil {
		err = fmt.Errorf("API token: %w", err)
	} else if token == "" && !loopback(cfg.APIAddr) {
		err = fmt.Errorf("refusing to serve the API on %s without a token", cfg.APIAddr)
	}
	downloads, aerr := downloadRoot(cfg.Downloads)
	if err == nil {
		err = aerr
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	maxPeers := fitPeersToDescriptors(cfg.MaxPeers, log)
	st, err := buildStack(stackConfig{
		PeerAddr: cfg.PeerAddr, DHT: cfg.DHT, Encryption: cfg.Encryption.Encryption, StateDir: cfg.State, Logger: logger,
		Engine: engine.Config{
			PeerID: wire.NewPeerID(rand.Reader), MaxPeers: maxPeers, MaxPeersPerTorrent: cfg.MaxPeersPerTorrent,
			UnchokeSlots: cfg.UnchokeSlots, Persister: store, DownloadRoot: downloads,
		},
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	d := &daemon{downloads: downloads, stack: st, store: store}
	if err := st.client.SetGlobal(cfg.global(store, log), false); err != nil {
		d.stop()
		return nil, err
	}
	d.restore(log)
	apiRate := cfg.APIRate << 10
	if apiRate == 0 {
		apiRate = -1 // the flag's 0 is unlimited, Config's 0 the default
	}
	var logs func(uint64) ([]httpapi.LogLine, uint64)
	if ring != nil {
		logs = ring.Since
	}
	api, err := httpapi.New(httpapi.Config{Client: d.client, Addr: cfg.APIAddr, Token: token, DownloadRoot: downloads, Logs: logs,
		Logf: logfTo(logger, "httpapi", slog.LevelWarn), APIRate: apiRate, OnChange: store.FlushTorrent,
		MetricsPerTorrent: cfg.MetricsPerTorrent, Version: Version(), Started: started})
	if err == nil {
		err = api.Start()
	}
	if err != nil {
		d.stop()
		return nil, err
	}
	d.api = api
	return d, nil
}

// restore adds every saved torrent, trusting verified pieces where the
// files still look as recorded.
func (d *daemon) restore(log *slog.Logger) {
	entries, errs := d.store.Load()
	for _, err := range errs {
		log.Warn("state folder entry unusable", "error", err.Error())
	}
	for _, e := range entries {
		opt := engine.AddOptions{Restored: true}
		if err := d.store.FinishMove(&e, d.downloads); err != nil {
			// The record still says where the data goes: starting the
			// torrent finishes the move before anything else. The
			// engine logs the error once, as the torrent enters it.
			opt.Error, opt.MoveTo = err, e.Resume.MoveTo
		}
		if e.HasResume {
			r := e.Resume
			opt.Settings = r.Settings
			opt.Added, opt.Downloaded, opt.Uploaded = r.Added, r.Downloaded, r.Uploaded
			opt.SeedingSeconds, opt.Trackers = r.SeedingSeconds, r.Trackers
			opt.Have = state.TrustedHave(e, d.downloads)
		} else {
			// Never dropped in silence: the torrent stays listed, in
			// error, saying what is known and what the user can do.
			opt.Dir, opt.Stopped = d.downloads, true
			opt.Error = fmt.Errorf("state: %v: its folder, settings and progress are unknown; "+
				"starting it rechecks its data in the download root (%s), or remove it and add it again with its folder", e.ResumeErr, d.downloads)
			log.Warn("torrent restored in error", "infohash", e.InfoHash().String(), "error", opt.Error.Error())
		}
		var err error
		if e.MetaInfo != nil {
			_, err = d.client.Add(e.MetaInfo, opt)
		} else {
			_, err = d.client.AddMagnet(e.Magnet, opt)
		}
		if err != nil {
			log.Error("restoring a torrent failed", "infohash", e.InfoHash().String(), "error", err.Error())
		}
	}
	order, err := d.store.LoadQueue()
	if err != nil {
		log.Error("queue order unreadable: ordering by time added", "error", err.Error())
	}
	d.client.RestoreQueue(order)
}

// global is the global settings to start with: the saved ones, with the
// flags given on this command line over them; the flags' defaults when
// none were saved.
func (cfg *serveConfig) global(store *state.Store, log *slog.Logger) engine.Global {
	saved, ok, err := store.LoadGlobal()
	if err != nil {
		log.Error("saved settings unreadable: starting from the flags", "error", err.Error())
	}
	if !ok {
		return cfg.Global
	}
	g, f := saved, cfg.Global
	for name, set := range map[string]func(){
		"max-down": func() { g.MaxDown = f.MaxDown }, "max-up": func() { g.MaxUp = f.MaxUp },
		"max-active-downloads": func() { g.MaxActiveDownloads = f.MaxActiveDownloads },
		"max-active-seeds":     func() { g.MaxActiveSeeds = f.MaxActiveSeeds },
		"ratio-limit":          func() { g.RatioLimit = f.RatioLimit },
		"seed-time-limit":      func() { g.SeedTimeLimit = f.SeedTimeLimit },
		"limit-action":         func() { g.LimitAction = f.LimitAction },
		"default-path":         func() { g.DefaultPath = f.DefaultPath },
	} {
		if cfg.set[name] {
			set()
		}
	}
	return g
}

// stop shuts down in order: no new API calls, no new peers, sessions
// announce stopped and save, then the state writer flushes.
func (d *daemon) stop() {
	if d.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		d.api.Shutdown(ctx)
		cancel()
	}
	d.stack.stop()
	d.store.Close()
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Descriptors the daemon keeps besides peer connections: the file cache
// (engine.Config.MaxOpenFiles), the API's connections, DHT, trackers,
// listeners and state files.
const reservedDescriptors = 512 + httpapi.DefaultMaxConns + 64

// fitPeersToDescriptors raises the soft RLIMIT_NOFILE to the hard limit and
// lowers the peer limit to what the descriptors allow, saying so: running
// out mid-flight would refuse connections and files at random instead.
func fitPeersToDescriptors(maxPeers int, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return maxPeers
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	// Half-open handshakes count against the peer limit too (netio). A
	// tiny limit keeps a quarter for the rest rather than nothing.
	n := int(min(lim.Cur, 1<<30))
	room := n - min(reservedDescriptors, n/4)
	if room < maxPeers {
		fit := max(room, 16)
		log.Warn(fmt.Sprintf("%d file descriptors allowed (ulimit -n): at most %d peers instead of %d", lim.Cur, fit, maxPeers),
			"nofile", lim.Cur, "max_peers", fit, "asked", maxPeers)
		return fit
	}
	return maxPeers
}

// downloadRoot creates the download root if needed and returns it absolute
// with its symlinks resolved: the API resolves folders to real paths, and
// the engine checks every torrent folder against this one.
func downloadRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("download root: %w", err)
	}
	return abs, nil
}
