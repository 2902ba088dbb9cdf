package engine

import (
	"errors"
	"fmt"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/wire"
)

// ClientVersion is what we tell peers in the extension handshake.
const ClientVersion = "GoTorrentServer 0.1"

// maxPeerRequests is how many requests a peer may queue with us (our reqq).
const maxPeerRequests = 500

type msgsEvent struct {
	h    *Peer
	msgs []wire.Message
}

func (e msgsEvent) handle(s *Session) {
	p := e.h.p
	e.h.undelivered.Add(-int32(len(e.msgs)))
	for i := range e.msgs {
		m := &e.msgs[i]
		if p.closed {
			releaseBlock(m.Block)
			continue
		}
		p.lastRecv = s.now
		h := handlers[m.Type]
		if h == nil {
			continue // unknown or unsupported: ignored, as BEP 3 asks
		}
		if err := h(s, p, m); errors.Is(err, errBothSeeds) {
			s.dropPeer(p, err)
		} else if err != nil {
			s.dropAbuser(p, err) // a protocol violation
		}
	}
}

type handler func(s *Session, p *peer, m *wire.Message) error

// handlers dispatches by message type; a table rather than one long switch.
var handlers map[wire.Type]handler

func init() {
	handlers = map[wire.Type]handler{
		wire.KeepAlive:     func(*Session, *peer, *wire.Message) error { return nil },
		wire.Choke:         onChoke,
		wire.Unchoke:       onUnchoke,
		wire.Interested:    func(s *Session, p *peer, _ *wire.Message) error { return s.setPeerInterest(p, true) },
		wire.NotInterested: func(s *Session, p *peer, _ *wire.Message) error { return s.setPeerInterest(p, false) },
		wire.Have:          onHave,
		wire.Bitfield:      onBitfield,
		wire.HaveAll:       onHaveAll,
		wire.HaveNone:      onHaveNone,
		wire.Request:       onRequest,
		wire.Piece:         onPiece,
		wire.Cancel:        onCancel,
		wire.Reject:        onReject,
		wire.Extended:      onExtended,
		wire.Port:          onPort,
		wire.Suggest:       func(*Session, *peer, *wire.Message) error { return nil },
		wire.AllowedFast:   func(*Session, *peer, *wire.Message) error { return nil },
	}
}

var errNoFast = errors.New("engine: fast-extension message from a peer without it")

func onChoke(s *Session, p *peer, _ *wire.Message) error {
	p.peerChoking = true
	if s.dl.pick != nil && !p.fast {
		// Without the Fast extension a choke silently discards our
		// requests; blocks already sent may still arrive.
		p.unrequested = min(p.unrequested+int64(s.dl.pick.Outstanding(picker.PeerID(p.id)))*blockSize, maxUnrequested)
		s.dl.pick.PeerChoked(picker.PeerID(p.id), nil)
	}
	return nil
}

func onUnchoke(s *Session, p *peer, _ *wire.Message) error {
	p.peerChoking = false
	return nil
}

func onHave(s *Session, p *peer, m *wire.Message) error {
	if s.mi == nil {
		if len(p.pendingHaves) >= maxPendingHaves {
			return errors.New("engine: too many haves before metadata")
		}
		p.pendingHaves = append(p.pendingHaves, m.Index)
		return nil
	}
	i := int(m.Index)
	if i >= s.mi.NumPieces() {
		return fmt.Errorf("engine: have %d out of range", i)
	}
	if p.hasAll || p.has.Test(uint(i)) {
		return nil
	}
	p.has.Set(uint(i))
	if s.dl.pick != nil {
		if err := s.dl.pick.PeerHas(picker.PeerID(p.id), i); err != nil {
			return err
		}
		if !s.dl.pick.HasPiece(i) {
			s.setInterest(p, true)
		}
	}
	return nil
}

func onBitfield(s *Session, p *peer, m *wire.Message) error {
	if s.mi == nil {
		p.pendingBits = append([]byte(nil), m.Bitfield...)
		return nil
	}
	if err := wire.ValidateBitfield(m.Bitfield, s.mi.NumPieces()); err != nil {
		return err
	}
	if p.gotBitfield {
		// Some clients (aria2) send a bitfield after have-none: treat a
		// late one as haves, since a peer never loses pieces.
		for i := range s.mi.NumPieces() {
			if m.Bitfield[i/8]&(0x80>>(i%8)) != 0 {
				if err := onHave(s, p, &wire.Message{Type: wire.Have, Index: uint32(i)}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	p.gotBitfield = true
	setBits(p.has, m.Bitfield, s.mi.NumPieces())
	if p.has.Count() == uint(s.mi.NumPieces()) {
		return onHaveAll(s, p, m)
	}
	if s.dl.pick != nil {
		if err := s.dl.pick.PeerBitfield(picker.PeerID(p.id), p.has); err != nil {
			return err
		}
		s.updateInterest(p)
	}
	return nil
}

func onHaveAll(s *Session, p *peer, m *wire.Message) error {
	if m.Type == wire.HaveAll && !p.fast {
		return errNoFast
	}
	p.gotBitfield = true
	if s.mi == nil {
		p.pendingAll = true
		return nil
	}
	p.hasAll = true
	p.has.SetAll()
	if s.dl.pick == nil {
		return nil
	}
	s.dl.pick.PeerHaveAll(picker.PeerID(p.id))
	s.updateInterest(p)
	if s.seed() {
		// Two seeds have nothing to trade.
		return errBothSeeds
	}
	return nil
}

func onHaveNone(s *Session, p *peer, _ *wire.Message) error {
	if !p.fast {
		return errNoFast
	}
	p.gotBitfield = true
	return nil
}

func onReject(s *Session, p *peer, m *wire.Message) error {
	if !p.fast {
		return errNoFast
	}
	if s.dl.pick != nil {
		// A reject for a request we no longer track is harmless.
		_ = s.dl.pick.RequestRejected(picker.PeerID(p.id), picker.Request{Piece: int(m.Index), Begin: int(m.Begin), Length: int(m.Length)})
	}
	return nil
}

func onExtended(s *Session, p *peer, m *wire.Message) error {
	if !p.ext {
		return errors.New("engine: extended message from a peer without BEP 10")
	}
	switch m.ExtID {
	case extMetadata:
		return s.onMetadataMsg(p, m.ExtPayload)
	case extPex:
		s.onPexMsg(p, m.ExtPayload)
		return nil
	case 0:
	default:
		return nil // an id we never advertised
	}
	eh, err := wire.ParseExtHandshake(m.ExtPayload)
	if err != nil {
		return nil // a malformed handshake only costs the peer its extensions
	}
	p.extM = eh.M
	p.client = eh.V
	if eh.Port > 0 && eh.Port < 65536 {
		p.listenPort = uint16(eh.Port)
	}
	if eh.ReqQ > 0 {
		p.pipe.SetPeerMax(eh.ReqQ)
	}
	if eh.MetadataSize > 0 && eh.M["ut_metadata"] > 0 {
		p.metaSize = eh.MetadataSize
		if s.mag.fetch != nil {
			s.mag.fetch.AddPeer(ext.PeerID(p.id), eh.MetadataSize)
		}
	}
	return nil
}

// updateInterest recomputes whether we want something p has.
func (s *Session) updateInterest(p *peer) {
	if s.dl.pick == nil || p.has == nil {
		return
	}
	want := !s.complete() && (p.hasAll || s.dl.pick.Interesting(p.has))
	s.setInterest(p, want)
}

func (s *Session) setInterest(p *peer, want bool) {
	if p.amInterested == want {
		return
	}
	p.amInterested = want
	t := wire.NotInterested
	if want {
		t = wire.Interested
	}
	s.send(p, wire.AppendSimple(nil, t))
}

func (s *Session) setPeerInterest(p *peer, on bool) error {
	p.peerInterest = on
	if !on {
		p.uploads = p.uploads[:0]
		return nil
	}
	// A free upload slot goes to a newly interested peer at once rather
	// than at the next rechoke, up to 10 s later.
	if p.amChoking && s.dl.pick != nil && s.upload.freeSlot(s.swarm.unchoked()) {
		s.unchokeNow(p)
	}
	return nil
}
