package picker

import (
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"
)

// FuzzPicker drives a small picker with an arbitrary sequence of peer
// messages and session calls, including out-of-range pieces, misaligned
// blocks and bitfields with spare bits (what a hostile peer can send), and
// checks after every step that nothing panics, every internal invariant
// holds and every pick is a valid, needed, non-repeated block.
func FuzzPicker(f *testing.F) {
	f.Add([]byte{4, 2, 7, 2, 0, 0, 5, 0, 9, 7, 0, 0, 7, 0, 1, 11, 0, 0})
	f.Add([]byte{1, 0, 0, 5, 1, 3, 5, 2, 3, 7, 1, 0, 7, 2, 0})
	f.Add([]byte{9, 3, 1, 1, 2, 255, 5, 2, 40, 10, 0, 30, 5, 3, 40, 12, 0, 4, 4, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		n := int(data[0]%16) + 1
		blocksPer := int(data[1]%4) + 1
		lastLen := int64(blocksPer*BlockSize) - int64(data[2])*97
		size := func(i int) int64 {
			if i == n-1 {
				return max(lastLen, 1)
			}
			return int64(blocksPer * BlockSize)
		}
		p, err := New(n, size, nil, rand.New(rand.NewSource(int64(len(data)))))
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		ops := data[3:]
		for k := 0; k+2 < len(ops) && k < 3*500; k += 3 {
			op, a, b := ops[k]%16, ops[k+1], ops[k+2]
			peer := PeerID(a % 5)
			now = now.Add(time.Duration(a) * 10 * time.Millisecond)
			fuzzStep(t, p, op, peer, a, b, now)
			if err := checkInvariants(p); err != nil {
				t.Fatalf("op %d (%d %d %d): %v", k/3, op, a, b, err)
			}
		}
	})
}

func fuzzStep(t *testing.T, p *Picker, op uint8, peer PeerID, a, b byte, now time.Time) {
	n := p.NumPieces()
	piece := int(b) % (n + 2) // may be out of range on purpose
	switch op {
	case 0:
		_ = p.PeerHas(peer, piece-1)
	case 1:
		bf := bitset.New(uint(n + 8))
		for i := range n + 8 {
			if (int(a)*31+int(b)*7+i*13)%5 < 2 {
				bf.Set(uint(i))
			}
		}
		if b&1 == 0 {
			bf.Shrink(uint(n - 1))
		}
		_ = p.PeerBitfield(peer, bf)
	case 2:
		p.PeerHaveAll(peer)
	case 3:
		p.PeerHaveNone(peer)
	case 4:
		p.PeerGone(peer)
	case 5, 15:
		var has *bitset.BitSet
		if op == 15 {
			has = bitset.New(uint(n)).Set(uint(int(b) % n)).Set(uint(int(a) % n))
		}
		checkPicked(t, p, p.Pick(peer, has, int(b%24), now))
	case 6:
		checkPicked(t, p, p.PickAllowedFast(peer, nil, []int{piece - 1, int(a) % n}, int(b%8), now))
	case 7, 8:
		r := Request{Piece: piece - 1, Begin: int(a%5) * BlockSize, Length: BlockSize - int(b%2)}
		if ps := p.peers[peer]; ps != nil && len(ps.out) > 0 && a&1 == 0 {
			refs := sortedRefs(ps)
			ref := refs[int(b)%len(refs)]
			r = p.req(int(ref.piece), int(ref.block))
		}
		if op == 7 {
			_, _, _, _ = p.BlockReceived(peer, r.Piece, r.Begin, r.Length)
		} else {
			_ = p.RequestRejected(peer, r)
		}
	case 9:
		p.PeerChoked(peer, func(r Request) bool { return r.Piece%2 == int(b)%2 })
	case 10:
		p.Timeouts(now, time.Duration(b)*10*time.Millisecond)
	case 11:
		_ = p.PieceVerified(piece - 1)
	case 12:
		_, _ = p.PieceFailed(piece - 1)
	case 13:
		if a&1 == 1 {
			_ = p.SetPiecePriority(piece-1, int(a>>1)%3)
			break
		}
		p.SetSequential(b&1 == 1)
	case 14:
		p.EndgameDup = int(b % 5)
	}
}

// checkPicked asserts that a pick holds only valid blocks of pieces we
// still need, none twice.
func checkPicked(t *testing.T, p *Picker, reqs []Request) {
	t.Helper()
	for i, r := range reqs {
		if _, err := p.blockOf(r.Piece, r.Begin, r.Length); err != nil {
			t.Fatalf("picked invalid block %v: %v", r, err)
		}
		if p.HasPiece(r.Piece) {
			t.Fatalf("picked block %v of a verified piece", r)
		}
		if slices.Contains(reqs[i+1:], r) {
			t.Fatalf("picked %v twice in one call", r)
		}
	}
}
