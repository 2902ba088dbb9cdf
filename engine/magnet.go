package engine

import (
	"crypto/sha1"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

// Extension ids we advertise in the BEP 10 handshake's m dict. Peers send
// these ids to us; we send them the ids from their own m.
const (
	extPex      = 1
	extMetadata = 2
)

// maxMetaUnsent: a metadata request is not answered while this much to the
// peer is still unsent (it asks but does not read).
const maxMetaUnsent = 256 << 10

// metaPhase is the magnet side of a torrent: the link it was added from,
// the fetcher while the info dict is unknown, and the server of it once
// known (to peers that fetch it from us). Session-owned.
type metaPhase struct {
	link    *metainfo.Magnet
	fetch   *ext.MetadataFetcher // metadata phase only
	srv     *ext.MetadataServer  // once the info dict is known
	hashing bool                 // the assembled info dict is out for SHA-1
}

// pieces is the number of BEP 9 pieces we serve, 0 while we have none.
func (m *metaPhase) pieces() int {
	if m.srv == nil {
		return 0
	}
	return ext.NumMetadataPieces(m.srv.Size())
}

// stop ends a fetch; a hash in flight is then ignored.
func (m *metaPhase) stop() { m.fetch, m.hashing = nil, false }

// metaPieces is the number of BEP 9 pieces of the info dict we serve, or
// 0 while we do not have it.
func (s *Session) metaPieces() int { return s.mag.pieces() }

// maxPendingHaves bounds what a peer may announce before we know the
// torrent's size (a magnet still fetching metadata).
const maxPendingHaves = 1 << 16

// AddMagnet adds a torrent known only by its magnet link. The session runs
// in state "metadata" until it has fetched and verified the info dict from
// peers found through the link's trackers, its x.pe peers and the DHT, and
// then downloads like any other torrent.
func (c *Client) AddMagnet(m *metainfo.Magnet, opt AddOptions) (*Session, error) {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	if s := c.Session(m.InfoHash); s != nil {
		return s, fmt.Errorf("%w: %s", ErrExists, m.InfoHash)
	}
	s := newMagnetSession(c, m, opt.Dir, c.cfg.Now())
	s.configure(opt)
	if p, ok := c.cfg.Persister.(MagnetPersister); ok && !opt.Restored {
		r := s.resumeRecord()
		if err := p.AddMagnet(m, r); err != nil {
			return nil, err
		}
	}
	c.register(s, opt)
	var peers []netip.AddrPort
	for _, p := range m.Peers {
		if ap, err := netip.ParseAddrPort(p); err == nil {
			peers = append(peers, ap)
		}
	}
	if len(peers) > 0 {
		s.AddPeers(peers, "magnet")
	}
	return s, nil
}

// MagnetPersister is implemented by persisters that can keep a magnet link
// until its metadata is known. AddMagnet stores the link and the first
// resume record durably, or nothing.
type MagnetPersister interface {
	AddMagnet(m *metainfo.Magnet, r Resume) error
}

func newMagnetSession(c *Client, m *metainfo.Magnet, dir string, now time.Time) *Session {
	s := newSessionCommon(c, m.InfoHash, dir, now, magnetTiers(m.Trackers))
	s.mag.link = m
	s.publish()
	return s
}

func magnetTiers(trackers []string) [][]string {
	var tiers [][]string
	for _, t := range trackers {
		tiers = append(tiers, []string{t})
	}
	return tiers
}

// startMetadata enters the metadata phase.
func (s *Session) startMetadata() {
	s.to(onMagnet)
	s.life.started = s.now
	s.mag.fetch = ext.NewMetadataFetcher(s.ih, ext.FetcherConfig{})
	for _, p := range s.swarm.peers {
		if p.metaSize > 0 {
			s.mag.fetch.AddPeer(ext.PeerID(p.id), p.metaSize)
		}
	}
	s.joinSwarm()
}

// fetchMetadata sends the fetcher's requests; runs after every batch and
// tick while in the metadata phase.
func (s *Session) fetchMetadata() {
	if s.mag.fetch == nil || s.life.state != StateMetadata {
		return
	}
	for _, r := range s.mag.fetch.Next(s.now) {
		p := s.swarm.peers[picker.PeerID(r.Peer)]
		if p == nil || p.extM["ut_metadata"] <= 0 {
			continue
		}
		msg := ext.AppendMetadataMsg(nil, ext.MetadataMsg{Type: ext.MetadataRequest, Piece: r.Piece})
		s.send(p, wire.AppendExtended(nil, uint8(p.extM["ut_metadata"]), msg))
	}
	if s.mag.hashing || s.mag.fetch.Assembled() == nil {
		return
	}
	// SHA-1 of up to 8 MiB: off the session thread, bounded like all hashing.
	s.mag.hashing = true
	info := s.mag.fetch.Assembled()
	s.submit(s.c.hash, func() event {
		sum := sha1.Sum(info)
		return evFunc(func(s *Session) { s.metadataHashed(sum) })
	})
}

func (s *Session) metadataHashed(sum metainfo.Hash) {
	s.mag.hashing = false
	if s.mag.fetch == nil || s.life.state != StateMetadata {
		return
	}
	if err := s.mag.fetch.HashResult(sum); err != nil {
		s.logAt(slog.LevelWarn, "metadata failed its hash", "error", err.Error())
		return
	}
	mi, err := metainfo.ParseInfoBytes(s.mag.fetch.Info())
	if err != nil {
		s.setError(fmt.Errorf("engine: metadata from peers: %w", err))
		return
	}
	mi.Trackers = magnetTiers(s.mag.link.Trackers)
	mi.WebSeeds = s.mag.link.WebSeeds
	s.setMetaInfo(mi)
	if p := s.c.cfg.Persister; p != nil {
		s.submit(s.c.disk, func() event {
			if err := p.AddTorrent(mi, nil); err != nil {
				s.logAt(slog.LevelError, "saving metadata failed", "error", err.Error())
			}
			return nil
		})
	}
	s.mag.fetch = nil
	s.to(onMetadata)
	s.start(nil)
}

// setMetaInfo makes the torrent's size known to the session and to readers
// of MetaInfo, and gives every connected peer its piece set.
func (s *Session) setMetaInfo(mi *metainfo.MetaInfo) {
	s.mi = mi
	s.miPub.Store(mi)
	s.applyPriorities()
	s.mag.srv = ext.NewMetadataServer(mi.InfoBytes)
	for _, p := range s.swarm.peers {
		if err := s.applyPending(p); err != nil {
			s.dropPeer(p, err)
		}
	}
}

// applyPending turns what a peer announced before the size was known into
// its piece set.
func (s *Session) applyPending(p *peer) error {
	p.has = bitsetFor(s.mi)
	if p.pendingAll {
		p.hasAll = true
		p.has.SetAll()
	}
	if p.pendingBits != nil {
		if err := wire.ValidateBitfield(p.pendingBits, s.mi.NumPieces()); err != nil {
			return err
		}
		setBits(p.has, p.pendingBits, s.mi.NumPieces())
	}
	for _, i := range p.pendingHaves {
		if int(i) >= s.mi.NumPieces() {
			return fmt.Errorf("engine: have %d out of range", i)
		}
		p.has.Set(uint(i))
	}
	p.pendingBits, p.pendingHaves = nil, nil
	return nil
}

// onMetadataMsg handles ut_metadata: serve requests once we have the info
// dict (reject before), feed data and rejects to the fetcher.
func (s *Session) onMetadataMsg(p *peer, payload []byte) error {
	m, err := ext.ParseMetadataMsg(payload)
	if err != nil {
		return nil // a malformed message costs the peer nothing but itself
	}
	switch m.Type {
	case ext.MetadataRequest:
		id := p.extM["ut_metadata"]
		if id <= 0 {
			return nil
		}
		// A peer needs each piece once, and one more try each; answers
		// past that, or while it is not reading, are not sent.
		p.metaRequests++
		if int(p.metaRequests) > 2*max(s.metaPieces(), 1)+2 || p.conn.Buffered() > maxMetaUnsent {
			s.offence(p, "metadata requests beyond what it needs")
			return nil
		}
		var reply []byte
		if s.mag.srv != nil {
			reply = s.mag.srv.Answer(nil, m)
		} else {
			reply = ext.AppendMetadataMsg(nil, ext.MetadataMsg{Type: ext.MetadataReject, Piece: m.Piece})
		}
		s.send(p, wire.AppendExtended(nil, uint8(id), reply))
	default:
		if s.mag.fetch != nil {
			if err := s.mag.fetch.OnMessage(ext.PeerID(p.id), m, s.now); err != nil {
				if s.c.debugOn() {
					s.logAt(slog.LevelDebug, "bad metadata message", "peer", p.addr.String(), "error", err.Error())
				}
			}
		}
	}
	return nil
}
