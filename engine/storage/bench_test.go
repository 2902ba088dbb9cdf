package storage

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzBlockRange feeds peer-chosen request triples to ReadBlock and
// WriteBlock: they must never panic, must reject everything outside the
// torrent with ErrRange, and in-range reads must return the torrent's bytes.
func FuzzBlockRange(f *testing.F) {
	mi, data := newTorrent(f, "fz", 1000, mixedFiles, 70)
	s, err := Open(f.TempDir(), mi)
	if err != nil {
		f.Fatal(err)
	}
	for p := range mi.NumPieces() {
		if ok, err := s.HashAndWritePiece(p, pieceData(mi, data, p)); !ok || err != nil {
			f.Fatal(ok, err)
		}
	}
	f.Cleanup(func() { s.Close() })
	f.Add(0, int64(0), uint32(16384))
	f.Add(6, int64(610), uint32(1))
	f.Add(-1, int64(0), uint32(1))
	f.Add(1<<40, int64(1)<<62, uint32(0xffffffff))
	f.Add(2, int64(-9223372036854775808), uint32(5))
	f.Add(6, int64(611), uint32(0))
	f.Fuzz(func(t *testing.T, piece int, begin int64, n uint32) {
		n %= 1 << 16 // bound the allocation; longer requests behave the same
		dst := make([]byte, n)
		err := s.ReadBlock(piece, begin, dst)
		inRange := piece >= 0 && piece < mi.NumPieces() && begin >= 0 &&
			begin <= mi.PieceSize(piece) && int64(n) <= mi.PieceSize(piece)-begin
		if !inRange {
			if !errors.Is(err, ErrRange) {
				t.Fatalf("out-of-range read (%d, %d, %d): %v", piece, begin, n, err)
			}
			if err := s.WriteBlock(piece, begin, dst); !errors.Is(err, ErrRange) {
				t.Fatalf("out-of-range write (%d, %d, %d): %v", piece, begin, n, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("in-range read (%d, %d, %d): %v", piece, begin, n, err)
		}
		if !bytes.Equal(dst, pieceData(mi, data, piece)[begin:begin+int64(n)]) {
			t.Fatalf("read (%d, %d, %d) returned wrong bytes", piece, begin, n)
		}
	})
}

func benchStorage(b *testing.B, pieces int) (*Storage, []byte) {
	files := []tfile{{path: "a", length: int64(pieces/2) << 20}, {path: "b", length: int64(pieces-pieces/2) << 20}}
	mi, data := newTorrent(b, "bench", 1<<20, files, 80)
	s := openT(b, b.TempDir(), mi, Options{})
	return s, data
}

func BenchmarkHashPiece(b *testing.B) {
	s, data := benchStorage(b, 16)
	mi := s.MetaInfo()
	for p := range mi.NumPieces() {
		if err := s.WriteBlock(p, 0, pieceData(mi, data, p)); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(1 << 20)
	for i := 0; b.Loop(); i++ {
		if ok, err := s.HashPiece(i % 16); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkHashAndWritePiece(b *testing.B) {
	s, data := benchStorage(b, 16)
	mi := s.MetaInfo()
	b.SetBytes(1 << 20)
	for i := 0; b.Loop(); i++ {
		if ok, err := s.HashAndWritePiece(i%16, pieceData(mi, data, i%16)); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkWriteRead writes and reads back one 16 KiB block, the unit peers
// exchange.
func BenchmarkWriteRead(b *testing.B) {
	s, data := benchStorage(b, 16)
	mi := s.MetaInfo()
	const block = 16 << 10
	blocksPerPiece := int(mi.PieceLength / block)
	dst := make([]byte, block)
	b.SetBytes(2 * block)
	for i := 0; b.Loop(); i++ {
		p, off := (i/blocksPerPiece)%16, int64(i%blocksPerPiece)*block
		src := pieceData(mi, data, p)[off : off+block]
		if err := s.WriteBlock(p, off, src); err != nil {
			b.Fatal(err)
		}
		if err := s.ReadBlock(p, off, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReopen reads one 16 KiB block alternately from two files with
// room for one cached descriptor, so every read opens a file: the cost of
// path resolution, which the descriptor cache normally hides.
func BenchmarkReopen(b *testing.B) {
	files := []tfile{{path: "sub/dir/a", length: 1 << 20}, {path: "sub/dir/b", length: 1 << 20}}
	mi, data := newTorrent(b, "bench", 1<<20, files, 81)
	s := openT(b, b.TempDir(), mi, Options{MaxOpenFiles: 1})
	for p := range mi.NumPieces() {
		if err := s.WriteBlock(p, 0, pieceData(mi, data, p)); err != nil {
			b.Fatal(err)
		}
	}
	dst := make([]byte, 16<<10)
	b.SetBytes(int64(len(dst)))
	for i := 0; b.Loop(); i++ {
		if err := s.ReadBlock(i%2, 0, dst); err != nil {
			b.Fatal(err)
		}
	}
}
