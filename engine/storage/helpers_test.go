package storage

import (
	"crypto/sha1"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotorrentserver/metainfo"
)

// tfile describes one file of a test torrent.
type tfile struct {
	path   string // slash-separated, below the torrent name
	length int64
	pad    bool
}

// newTorrent builds a MetaInfo over random data (zeros in pad files) and
// returns it with the data, so tests can check disk contents against it.
func newTorrent(t testing.TB, name string, pieceLen int64, files []tfile, seed uint64) (*metainfo.MetaInfo, []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mi := &metainfo.MetaInfo{Name: name, PieceLength: pieceLen}
	var data []byte
	for _, f := range files {
		mi.Files = append(mi.Files, metainfo.File{
			Path: strings.Split(f.path, "/"), Length: f.length, Offset: int64(len(data)), Pad: f.pad,
		})
		chunk := make([]byte, f.length)
		if !f.pad {
			for i := range chunk {
				chunk[i] = byte(rng.Uint32())
			}
		}
		data = append(data, chunk...)
	}
	mi.TotalLength = int64(len(data))
	for off := int64(0); off < mi.TotalLength; off += pieceLen {
		mi.Pieces = append(mi.Pieces, sha1.Sum(data[off:min(off+pieceLen, mi.TotalLength)]))
	}
	return mi, data
}

// singleFile builds a one-file torrent, laid out as root/name.
func singleFile(t testing.TB, name string, pieceLen, length int64, seed uint64) (*metainfo.MetaInfo, []byte) {
	mi, data := newTorrent(t, name, pieceLen, []tfile{{path: name, length: length}}, seed)
	mi.SingleFile = true
	return mi, data
}

// mixedFiles has lengths the piece length (1000) does not divide, an empty
// file, a one-byte file and nested folders.
var mixedFiles = []tfile{
	{path: "a.bin", length: 2500},
	{path: "empty.txt", length: 0},
	{path: "sub/b.bin", length: 1},
	{path: "sub/deeper/c.bin", length: 3333},
	{path: "d.bin", length: 777},
}

func pieceData(mi *metainfo.MetaInfo, data []byte, i int) []byte {
	off := int64(i) * mi.PieceLength
	return data[off : off+mi.PieceSize(i)]
}

func openT(t testing.TB, root string, mi *metainfo.MetaInfo, opt Options) *Storage {
	t.Helper()
	s, err := OpenWith(root, mi, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeAllBlocks writes every piece in blockSize blocks, in random order.
func writeAllBlocks(t testing.TB, s *Storage, data []byte, blockSize int64, seed uint64) {
	t.Helper()
	mi := s.MetaInfo()
	type blk struct {
		piece int
		begin int64
	}
	var blocks []blk
	for p := range mi.NumPieces() {
		for b := int64(0); b < mi.PieceSize(p); b += blockSize {
			blocks = append(blocks, blk{p, b})
		}
	}
	rand.New(rand.NewPCG(seed, 1)).Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
	for _, b := range blocks {
		pd := pieceData(mi, data, b.piece)
		end := min(b.begin+blockSize, int64(len(pd)))
		if err := s.WriteBlock(b.piece, b.begin, pd[b.begin:end]); err != nil {
			t.Fatalf("WriteBlock(%d, %d): %v", b.piece, b.begin, err)
		}
	}
}

// listTree returns every path below root, slash-separated, for assertions
// on exactly what exists on disk.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

// openFDsUnder counts this process's descriptors whose target lies below
// dir: what an operator would see in /proc or lsof.
func openFDsUnder(t testing.TB, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("SKIP (no /proc/self/fd): %v", err)
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // /proc shows resolved targets
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}
