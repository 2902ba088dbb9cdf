package swarm

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"gotorrentserver/engine/wire"
	"gotorrentserver/metainfo"
)

var netipLoopback = netip.MustParseAddrPort("127.0.0.1:1")

// sink is the part of gnet.Conn a connection writes through.
type sink struct {
	gnet.Conn
	out bytes.Buffer
}

func (s *sink) Write(b []byte) (int, error) { return s.out.Write(b) }

// EventLoop: the fuzzed swarm has no loops; its pacer is driven by hand.
func (s *sink) EventLoop() gnet.EventLoop { return nil }

// fuzzSwarm is a swarm with no sockets: enough state for conn.consume.
func fuzzSwarm(t testing.TB, mode Mode, mi *metainfo.MetaInfo, p Payload, paced bool) (*Swarm, *torrent) {
	cfg := Config{Mode: mode, Torrents: []Torrent{{Meta: mi, Payload: p}}, Target: netipLoopback, Pipeline: 8,
		Verify: true, Corrupt: 0.5}
	if paced {
		cfg.RateCap, cfg.RTT = 1<<20, 10*time.Millisecond
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	s := &Swarm{cfg: cfg, byHash: map[metainfo.Hash]*torrent{}, slots: make([]slot, 1)}
	bf := make([]byte, wire.BitfieldLen(mi.NumPieces()))
	tt := &torrent{mi: mi, payload: p, bitfield: wire.AppendBitfield(nil, bf), maxFrame: wire.MaxFrame(wire.MaxBlockLen, mi.NumPieces())}
	s.byHash[mi.InfoHash] = tt
	return s, tt
}

func frame(id wire.Type, payload ...uint32) []byte {
	b := []byte{0, 0, 0, 0, byte(id)}
	for _, v := range payload {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// FuzzConsume feeds the peer's side of a connection, in any split, to a
// leecher, a seeder and an idle peer, dialed and accepted, paced or not:
// nothing may panic, a leecher never exceeds its pipeline (held blocks
// included), and an error stops the stream where it happened.
func FuzzConsume(f *testing.F) {
	p := Payload{Seed: 1, Size: 100_000}
	_, mi, err := MakeTorrent(p, "f.bin", 32<<10)
	if err != nil {
		f.Fatal(err)
	}
	hs := wire.AppendHandshake(nil, wire.Handshake{InfoHash: mi.InfoHash})
	good := append(append([]byte{}, hs...), frame(wire.Unchoke)...)
	good = append(good, frame(wire.Interested)...)
	good = append(good, frame(wire.Request, 0, 0, 16384)...)
	block := make([]byte, 16384)
	p.ReadAt(block, 0)
	piece := frame(wire.Piece, 0, 0)
	piece = append(piece, block...)
	binary.BigEndian.PutUint32(piece, uint32(len(piece)-4))
	good = append(good, piece...)
	good = append(good, frame(wire.Choke)...)
	good = append(good, frame(wire.Reject, 0, 16384, 16384)...)
	f.Add(good, uint8(7))
	f.Add(hs[:40], uint8(0))
	f.Add(append(append([]byte{}, hs...), 0xff, 0xff, 0xff, 0xff, 7), uint8(3))
	f.Add(append(append([]byte{}, hs...), frame(wire.Request, 99, 0, 1<<20)...), uint8(1))
	f.Add(append(append([]byte{}, hs...), 0, 0, 0, 5, 7, 0, 0, 0, 0), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		for i := range 12 {
			mode, inbound, paced := []Mode{Leech, Seed, Idle}[i%3], i/3%2 == 1, i/6 == 1
			s, tt := fuzzSwarm(t, mode, mi, p, paced)
			var c *conn
			if inbound {
				c = s.newConn(-1, nil, true)
			} else {
				c = s.newConn(0, tt, false)
			}
			c.gc = &sink{}
			c.lk = tcpLink{c.gc}
			// Deliver in two parts, as two wake-ups would.
			cut := min(int(split), len(data))
			buf := append([]byte{}, data[:cut]...)
			n, err := c.consume(buf)
			if n > len(buf) {
				t.Fatalf("used %d of %d bytes", n, len(buf))
			}
			if err == nil {
				buf = append(buf[n:], data[cut:]...)
				n, err = c.consume(buf)
				if n > len(buf) {
					t.Fatalf("used %d of %d bytes", n, len(buf))
				}
			}
			if err == nil && c.pc != nil {
				c.pace(s.clock() + time.Hour) // everything queued is due
			}
			c.flush()
			if c.lch != nil && len(c.lch.outstanding)+c.lch.held.len() > s.cfg.Pipeline {
				t.Fatalf("%d requests outstanding, %d held, pipeline %d", len(c.lch.outstanding), c.lch.held.len(), s.cfg.Pipeline)
			}
		}
	})
}
