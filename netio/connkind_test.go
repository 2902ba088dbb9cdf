package netio

import (
	"path/filepath"
	"testing"
	"time"

	"gotorrentserver/engine"
)

// The peer list says what kind of link each peer has: over uTP with RC4
// on both sides, the leecher's peer dialed (outbound), the seeder's not;
// over TCP in plaintext, neither flag. Progress and seed follow the
// peer's pieces.
func TestPeerSnapshotConnKind(t *testing.T) {
	for _, tc := range []struct {
		name      string
		enc       Encryption
		utp       bool
		encrypted bool
	}{
		{"utp-rc4", EncryptionRequire, true, true},
		{"tcp-plain", EncryptionDisable, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := testData(t, "kind-"+tc.name, []int{1000001, 500003})
			_, mi := makeTorrent(t, data, 64<<10)
			seed := startNodeWith(t, engine.Config{}, Config{Encryption: tc.enc})
			addAndWait(t, seed, mi, filepath.Dir(data), engine.StateSeeding)
			leech := startNodeWith(t, engine.Config{}, Config{Encryption: tc.enc})
			// Capped, so the transfer outlasts a few of the seeder's ticks:
			// its peer list shows the leecher only while connected.
			ls, err := leech.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: leech.dir, MaxDown: 256 << 10}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.utp {
				leech.srv.PreferUTP(seed.addr())
			}
			ss := seed.client.Session(mi.InfoHash)
			ls.AddPeers(addrs(seed.addr()), "test")
			var fromSeed engine.PeerSnapshot
			waitFor(t, "the seeder lists the leecher", 60*time.Second, func() bool {
				for _, p := range ss.Snapshot().Peers {
					if p.PeerID != ([20]byte{}) && p.Connected {
						fromSeed = p
						return true
					}
				}
				return false
			})
			waitState(t, ls, engine.StateSeeding, 60*time.Second)
			for _, side := range []struct {
				who      string
				outbound bool
			}{{"leecher", true}, {"seeder", false}} {
				got := fromSeed
				if side.outbound {
					// Known peers keep their last connection's figures
					// once it ends (two seeds part).
					waitFor(t, "the leecher lists the seeder", 30*time.Second, func() bool {
						for _, p := range ls.Snapshot().Peers {
							if p.PeerID != ([20]byte{}) {
								got = p
								return true
							}
						}
						return false
					})
				}
				if got.Encrypted != tc.encrypted || got.UTP != tc.utp || got.Outbound != side.outbound {
					t.Errorf("%s's peer: encrypted %v utp %v outbound %v, want %v %v %v", side.who,
						got.Encrypted, got.UTP, got.Outbound, tc.encrypted, tc.utp, side.outbound)
				}
				if side.outbound && (!got.Seed() || got.Have != got.NumPieces) {
					t.Errorf("leecher's peer (the seeder): seed %v, %d of %d pieces", got.Seed(), got.Have, got.NumPieces)
				}
			}
		})
	}
}
