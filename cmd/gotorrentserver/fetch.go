package main

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
	"gotorrentserver/netio"
)

// fetchMagnetInfo joins the magnet's swarm just long enough to fetch and
// verify its info dict, then leaves without keeping any data.
func fetchMagnetInfo(link string, timeout time.Duration, enc netio.Encryption) (*infoJSON, error) {
	m, err := metainfo.ParseMagnet(link)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gts-fetch")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st, err := buildStack(stackConfig{
		PeerAddr:   "0.0.0.0:0",
		Encryption: enc,
		// Network notices still reach stderr; the throwaway session's
		// own lines (added, removed) would only confuse.
		Logf:   logfTo(slog.New(slog.NewTextHandler(os.Stderr, nil)), "netio", slog.LevelWarn),
		Engine: engine.Config{PeerID: wire.NewPeerID(rand.Reader), Logger: discardLogger()},
	})
	if err != nil {
		return nil, err
	}
	defer st.stop()
	client := st.client
	sess, err := client.AddMagnet(m, engine.AddOptions{Settings: engine.Settings{Dir: tmp, MaxDown: 1}}) // 1 B/s: metadata only
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if mi := sess.MetaInfo(); mi != nil {
			out := describeMeta(mi)
			client.Remove(mi.InfoHash, true)
			return out, nil
		}
		if sn := sess.Snapshot(); sn.State == engine.StateError {
			return nil, fmt.Errorf("%s", sn.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("no metadata from %d trackers and %d peers within %v", len(m.Trackers), len(m.Peers), timeout)
}
