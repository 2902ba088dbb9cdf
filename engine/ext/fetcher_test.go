package ext

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// testInfo builds a real info dict spanning several metadata pieces.
func testInfo(t *testing.T, numHashes int) ([]byte, metainfo.Hash) {
	t.Helper()
	pieces := make([]byte, 20*numHashes)
	for i := range pieces {
		pieces[i] = byte(i * 7)
	}
	info, err := metainfo.Encode(map[string]any{
		"name": "test", "piece length": int64(16384), "length": int64(16384 * numHashes), "pieces": pieces,
	})
	if err != nil {
		t.Fatal(err)
	}
	return info, sha1.Sum(info)
}

// responder is how a simulated peer answers a request; ok=false is silence.
type responder func(piece int) (m MetadataMsg, ok bool)

func honest(info []byte) responder {
	s := NewMetadataServer(info)
	return func(piece int) (MetadataMsg, bool) {
		m, _ := ParseMetadataMsg(s.Answer(nil, MetadataMsg{Type: MetadataRequest, Piece: piece}))
		return m, true
	}
}

func silent(int) (MetadataMsg, bool) { return MetadataMsg{}, false }

// sim drives a fetcher the way a session would, one second per round.
type sim struct {
	t          *testing.T
	f          *MetadataFetcher
	now        time.Time
	peers      map[PeerID]responder
	asked      map[PeerID]int
	errs       []error
	mismatches int
}

func newSim(t *testing.T, ih metainfo.Hash, cfg FetcherConfig) *sim {
	return &sim{t: t, f: NewMetadataFetcher(ih, cfg), now: time.Unix(1e9, 0),
		peers: map[PeerID]responder{}, asked: map[PeerID]int{}}
}

func (s *sim) add(p PeerID, size int64, r responder) {
	s.t.Helper()
	if err := s.f.AddPeer(p, size); err != nil {
		s.t.Fatal(err)
	}
	s.peers[p] = r
}

func (s *sim) run(rounds int) {
	for i := 0; i < rounds && !s.f.Done(); i++ {
		for _, r := range s.f.Next(s.now) {
			s.asked[r.Peer]++
			if m, ok := s.peers[r.Peer](r.Piece); ok {
				if err := s.f.OnMessage(r.Peer, m, s.now); err != nil {
					s.errs = append(s.errs, err)
				}
			}
		}
		if s.f.Assembled() != nil {
			if err := s.f.Verify(); errors.Is(err, ErrHashMismatch) {
				s.mismatches++
			} else if err != nil {
				s.t.Fatal(err)
			}
		}
		s.now = s.now.Add(time.Second)
	}
}

func (s *sim) mustFinish(info []byte) {
	s.t.Helper()
	if !s.f.Done() {
		have, total := s.f.Progress()
		s.t.Fatalf("not done: %d/%d pieces, errors %v", have, total, s.errs)
	}
	if !bytes.Equal(s.f.Info(), info) {
		s.t.Fatal("fetched info differs from the original")
	}
	mi, err := metainfo.ParseInfoBytes(s.f.Info())
	if err != nil || mi.InfoHash != sha1.Sum(info) {
		s.t.Fatalf("ParseInfoBytes: %v", err)
	}
}

func TestFetcherParallelPeers(t *testing.T) {
	info, ih := testInfo(t, 4000) // 80 KB of hashes: 5 metadata pieces, last one short
	if n := NumMetadataPieces(int64(len(info))); n != 5 || len(info)%MetadataPieceLen == 0 {
		t.Fatalf("test info spans %d pieces", n)
	}
	s := newSim(t, ih, FetcherConfig{})
	for p := PeerID(1); p <= 3; p++ {
		s.add(p, int64(len(info)), honest(info))
	}
	first := s.f.Next(s.now)
	perPeer := map[PeerID]int{}
	for _, r := range first {
		perPeer[r.Peer]++
	}
	if len(first) != 5 || len(perPeer) != 3 {
		t.Fatalf("first round asked %v, want 5 pieces spread over 3 peers", first)
	}
	for p, n := range perPeer {
		if n > 2 {
			t.Fatalf("peer %d has %d requests, above MaxRequestsPerPeer", p, n)
		}
	}
	for _, r := range first {
		m, _ := s.peers[r.Peer](r.Piece)
		if err := s.f.OnMessage(r.Peer, m, s.now); err != nil {
			t.Fatal(err)
		}
	}
	if s.f.Assembled() == nil || s.f.Done() {
		t.Fatal("all pieces in but nothing awaits verification")
	}
	if got := s.f.Next(s.now); got != nil {
		t.Fatalf("requests while verifying: %v", got)
	}
	if err := s.f.HashResult(sha1.Sum(s.f.Assembled())); err != nil {
		t.Fatal(err)
	}
	s.mustFinish(info)
}

func TestFetcherRejectsBadSizes(t *testing.T) {
	f := NewMetadataFetcher(metainfo.Hash{}, FetcherConfig{})
	for _, size := range []int64{0, -1, MaxMetadataSize + 1} {
		if err := f.AddPeer(1, size); !errors.Is(err, ErrMetadataSize) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	if got := f.Next(time.Now()); got != nil {
		t.Fatalf("requests without usable peers: %v", got)
	}
}

// A minority announcing another metadata_size is outvoted and never asked.
func TestFetcherOutvotesSizeLiar(t *testing.T) {
	info, ih := testInfo(t, 2000)
	s := newSim(t, ih, FetcherConfig{})
	s.add(1, 100, func(int) (MetadataMsg, bool) {
		return MetadataMsg{Type: MetadataData, TotalSize: 100, Data: make([]byte, 100)}, true
	})
	s.add(2, int64(len(info)), honest(info))
	s.add(3, int64(len(info)), honest(info))
	s.run(10)
	s.mustFinish(info)
	if s.asked[1] != 0 {
		t.Fatalf("asked the outvoted peer %d times", s.asked[1])
	}
}

// Data contradicting the peer's own handshake bans it and discards what it
// gave; the others finish the job.
func TestFetcherBansInconsistentPeer(t *testing.T) {
	info, ih := testInfo(t, 4000)
	size := int64(len(info))
	for name, bad := range map[string]responder{
		"total-size": func(p int) (MetadataMsg, bool) {
			m, _ := honest(info)(p)
			m.TotalSize++
			return m, true
		},
		"short-data": func(p int) (MetadataMsg, bool) {
			m, _ := honest(info)(p)
			m.Data = m.Data[:len(m.Data)-1]
			return m, true
		},
		"out-of-range": func(int) (MetadataMsg, bool) {
			return MetadataMsg{Type: MetadataData, Piece: 9, TotalSize: size, Data: []byte("x")}, true
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSim(t, ih, FetcherConfig{})
			served := 0
			// Peer 1 answers its first request honestly, then lies: the
			// honest piece must be discarded with the rest.
			s.add(1, size, func(p int) (MetadataMsg, bool) {
				if served++; served == 1 {
					return honest(info)(p)
				}
				return bad(p)
			})
			s.add(2, size, honest(info))
			s.run(20)
			s.mustFinish(info)
			if len(s.errs) != 1 || !errors.Is(s.errs[0], ErrBadPeer) || !s.f.Excluded(1) {
				t.Fatalf("errors %v, excluded %v", s.errs, s.f.Excluded(1))
			}
			if s.f.Excluded(2) {
				t.Fatal("honest peer excluded")
			}
		})
	}
}

// One peer serving well-formed garbage: the parallel download fails its
// hash, everyone becomes a suspect, suspects are retried alone, the liar is
// banned and an honest suspect completes the download.
func TestFetcherHashMismatchFindsLiar(t *testing.T) {
	info, ih := testInfo(t, 4000)
	size := int64(len(info))
	garbage := bytes.Repeat([]byte{'z'}, len(info))
	s := newSim(t, ih, FetcherConfig{})
	s.add(1, size, honest(garbage))
	s.add(2, size, honest(info))
	s.add(3, size, honest(info))
	s.run(30)
	s.mustFinish(info)
	if s.mismatches != 2 {
		t.Fatalf("%d hash mismatches, want 2 (parallel, then the liar alone)", s.mismatches)
	}
	if !s.f.Excluded(1) || s.f.Excluded(2) || s.f.Excluded(3) {
		t.Fatalf("excluded: 1=%v 2=%v 3=%v", s.f.Excluded(1), s.f.Excluded(2), s.f.Excluded(3))
	}
}

// A lone contributor of bad metadata is banned at once; a fresh honest
// peer then succeeds.
func TestFetcherHashMismatchSingleSource(t *testing.T) {
	info, ih := testInfo(t, 100)
	s := newSim(t, ih, FetcherConfig{})
	s.add(1, int64(len(info)), honest(bytes.Repeat([]byte{'z'}, len(info))))
	s.run(3)
	if s.mismatches != 1 || !s.f.Excluded(1) || s.f.Done() {
		t.Fatalf("mismatches %d, excluded %v", s.mismatches, s.f.Excluded(1))
	}
	s.add(2, int64(len(info)), honest(info))
	s.run(3)
	s.mustFinish(info)
	if err := s.f.HashResult(ih); !errors.Is(err, ErrNotAssembled) {
		t.Fatalf("HashResult after done: %v", err)
	}
}

func TestFetcherTimeoutsMoveToOtherPeers(t *testing.T) {
	info, ih := testInfo(t, 4000)
	size := int64(len(info))
	s := newSim(t, ih, FetcherConfig{RequestTimeout: 5 * time.Second, MaxStrikes: 2})
	s.add(1, size, silent)
	s.add(2, size, honest(info))
	s.run(60)
	s.mustFinish(info)
	if !s.f.Excluded(1) {
		t.Fatal("a peer that never answers is still being asked")
	}
}

func TestFetcherLateDataIgnored(t *testing.T) {
	info, ih := testInfo(t, 100)
	f := NewMetadataFetcher(ih, FetcherConfig{RequestTimeout: 5 * time.Second})
	now := time.Unix(1e9, 0)
	f.AddPeer(1, int64(len(info)))
	if r := f.Next(now); len(r) != 1 || r[0].Peer != 1 {
		t.Fatalf("requests %v", r)
	}
	if r := f.Next(now.Add(5 * time.Second)); len(r) != 0 {
		t.Fatalf("re-asked a timed-out peer before its rest: %v", r)
	}
	m, _ := honest(info)(0)
	if err := f.OnMessage(1, m, now.Add(6*time.Second)); err != nil || f.Assembled() != nil {
		t.Fatalf("late piece: %v, assembled %v", err, f.Assembled() != nil)
	}
	// After its rest the peer is asked again and its answer counts.
	r := f.Next(now.Add(10 * time.Second))
	if len(r) != 1 {
		t.Fatalf("requests after rest %v", r)
	}
	if err := f.OnMessage(1, m, now.Add(10*time.Second)); err != nil || f.Verify() != nil {
		t.Fatal("retry failed")
	}
	if !bytes.Equal(f.Info(), info) {
		t.Fatal("wrong info")
	}
}

func TestFetcherRejectAndDisconnect(t *testing.T) {
	info, ih := testInfo(t, 4000)
	size := int64(len(info))
	s := newSim(t, ih, FetcherConfig{})
	s.add(1, size, func(p int) (MetadataMsg, bool) { return MetadataMsg{Type: MetadataReject, Piece: p}, true })
	s.add(2, size, silent)
	s.add(3, size, honest(info))
	// Peer 2 disconnects after its first requests; its pieces go elsewhere.
	for _, r := range s.f.Next(s.now) {
		s.asked[r.Peer]++
		if r.Peer != 2 {
			m, _ := s.peers[r.Peer](r.Piece)
			s.f.OnMessage(r.Peer, m, s.now)
		}
	}
	if s.asked[2] == 0 {
		t.Fatal("peer 2 was not asked")
	}
	s.f.RemovePeer(2)
	delete(s.peers, 2)
	s.run(5)
	s.mustFinish(info)
	if s.asked[1] > 3*2 {
		t.Fatalf("rejecting peer asked %d times", s.asked[1])
	}
}

func TestFetcherSizeChangeDropsData(t *testing.T) {
	info, ih := testInfo(t, 4000)
	f := NewMetadataFetcher(ih, FetcherConfig{})
	now := time.Unix(1e9, 0)
	f.AddPeer(1, int64(len(info)))
	for _, r := range f.Next(now) {
		m, _ := honest(info)(r.Piece)
		f.OnMessage(1, m, now)
	}
	if have, _ := f.Progress(); have != 2 {
		t.Fatalf("have %d", have)
	}
	f.AddPeer(1, int64(len(info))+1)
	f.Next(now)
	if have, total := f.Progress(); have != 0 || total != NumMetadataPieces(int64(len(info))+1) {
		t.Fatalf("after size change have %d of %d", have, total)
	}
}

func ExampleMetadataFetcher() {
	info := []byte("d4:name4:test12:piece lengthi16384e6:pieces0:e")
	f := NewMetadataFetcher(sha1.Sum(info), FetcherConfig{})
	server := NewMetadataServer(info) // the remote peer's side
	now := time.Now()
	f.AddPeer(1, server.Size())
	for _, r := range f.Next(now) {
		reply, _ := ParseMetadataMsg(server.Answer(nil, MetadataMsg{Type: MetadataRequest, Piece: r.Piece}))
		f.OnMessage(r.Peer, reply, now)
	}
	fmt.Println(f.Verify(), f.Done())
	// Output: <nil> true
}
