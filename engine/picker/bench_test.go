package picker

import (
	"math/rand"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"
)

// swarm builds a 100,000-piece torrent (256 KiB pieces) with 500 peers
// each holding a random half of the pieces.
func swarm(b *testing.B) *Picker {
	const n, peers = 100_000, 500
	p := uniform(b, n, 256<<10, 1)
	rng := rand.New(rand.NewSource(2))
	words := make([]uint64, (n+63)/64)
	for id := range PeerID(peers) {
		for i := range words {
			words[i] = rng.Uint64()
		}
		words[len(words)-1] &= 1<<(n%64) - 1
		if err := p.PeerBitfield(id, bitset.From(words)); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkPick measures one Pick of 16 blocks on a large swarm. The picked
// requests are cancelled again (included in the time) so that every
// iteration sees the same mostly-unstarted torrent.
func BenchmarkPick(b *testing.B) {
	p := swarm(b)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := PeerID(i % 500)
		reqs := p.Pick(id, nil, 16, now)
		if len(reqs) != 16 {
			b.Fatalf("picked %d", len(reqs))
		}
		for _, r := range reqs {
			_ = p.RequestCancelled(id, r)
		}
	}
}

// BenchmarkDownloadCycle measures the whole life of a block: Pick,
// BlockReceived and, per finished piece, a verification that fails so the
// torrent never completes and the state stays steady.
func BenchmarkDownloadCycle(b *testing.B) {
	p := swarm(b)
	now := t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := PeerID(i % 500)
		now = now.Add(time.Millisecond)
		for _, r := range p.Pick(id, nil, 4, now) {
			if _, complete, _, _ := p.BlockReceived(id, r.Piece, r.Begin, r.Length); complete {
				_, _ = p.PieceFailed(r.Piece)
			}
		}
	}
}

// BenchmarkPickSparsePeer is BenchmarkPick for a newcomer holding only 1%
// of the pieces, so the rarest-first walk must skip most pieces it meets.
func BenchmarkPickSparsePeer(b *testing.B) {
	p := swarm(b)
	const n = 100_000
	rng := rand.New(rand.NewSource(3))
	sparse := bitset.New(n)
	for range n / 100 {
		sparse.Set(uint(rng.Intn(n)))
	}
	if err := p.PeerBitfield(1000, sparse); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		reqs := p.Pick(1000, nil, 16, t0)
		if len(reqs) != 16 {
			b.Fatalf("picked %d", len(reqs))
		}
		for _, r := range reqs {
			_ = p.RequestCancelled(1000, r)
		}
	}
}
