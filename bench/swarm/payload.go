package swarm

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"gotorrentserver/metainfo"
)

// Payload is a deterministic byte stream of Size bytes: each aligned 8-byte
// word is a mix of Seed and its index, so any block can be produced on its
// own, in any order, with no disk and no memory beyond the block. The bytes
// do not compress and differ between pieces and between seeds. A Payload is
// a plain value, safe to share between goroutines.
type Payload struct {
	Seed uint64
	Size int64
}

// word is the splitmix64 finaliser of the word index: cheap (two
// multiplications per 8 bytes) and well spread.
func word(seed, w uint64) uint64 {
	x := w*0x9E3779B97F4A7C15 + seed
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}

// ReadAt fills b with the payload's bytes from off, like io.ReaderAt: it
// returns io.EOF when the range ends past Size.
func (p Payload) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("swarm: payload offset %d", off)
	}
	if off >= p.Size {
		return 0, io.EOF
	}
	var err error
	if rest := p.Size - off; int64(len(b)) > rest {
		b, err = b[:rest], io.EOF
	}
	p.fill(b, off)
	return len(b), err
}

// fill writes the bytes at [off, off+len(b)) into b, without bounds checks.
func (p Payload) fill(b []byte, off int64) {
	n := len(b)
	i := 0
	w := uint64(off) / 8
	if head := int(off % 8); head != 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], word(p.Seed, w))
		i = copy(b, tmp[head:])
		w++
	}
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], word(p.Seed, w))
		w++
	}
	if i < n {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], word(p.Seed, w))
		copy(b[i:], tmp[:])
	}
}

// PieceHashes returns the concatenated SHA-1 of every piece of pieceLen
// bytes (the last may be short), hashed on all cores.
func PieceHashes(p Payload, pieceLen int64) ([]byte, error) {
	if p.Size <= 0 || pieceLen <= 0 {
		return nil, fmt.Errorf("%w: payload of %d bytes in pieces of %d", ErrConfig, p.Size, pieceLen)
	}
	n := int((p.Size + pieceLen - 1) / pieceLen)
	out := make([]byte, 20*n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, pieceLen)
			h := sha1.New()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				b := buf[:min(pieceLen, p.Size-i*pieceLen)]
				p.fill(b, i*pieceLen)
				h.Reset()
				h.Write(b)
				h.Sum(out[20*i : 20*i])
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// TorrentFile encodes a single-file v1 .torrent for p named name, given its
// piece hashes from PieceHashes. announce may be empty. The infohash does not
// depend on announce, so one set of hashes makes torrents with and without a
// tracker for the same swarm.
func TorrentFile(p Payload, pieceLen int64, name string, hashes []byte, announce string) ([]byte, error) {
	info := map[string]any{
		"name":         name,
		"length":       p.Size,
		"piece length": pieceLen,
		"pieces":       hashes,
	}
	t := map[string]any{"info": info, "created by": "gotorrentserver bench/swarm"}
	if announce != "" {
		t["announce"] = announce
	}
	return metainfo.Encode(t)
}

// MakeTorrent hashes p and returns its .torrent bytes (no tracker) and the
// parsed metainfo.
func MakeTorrent(p Payload, name string, pieceLen int64) ([]byte, *metainfo.MetaInfo, error) {
	hashes, err := PieceHashes(p, pieceLen)
	if err != nil {
		return nil, nil, err
	}
	b, err := TorrentFile(p, pieceLen, name, hashes, "")
	if err != nil {
		return nil, nil, err
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		return nil, nil, err
	}
	return b, mi, nil
}

// WritePayload writes p to path (creating its folder), for a daemon to seed
// from or to recheck.
func WritePayload(p Payload, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < p.Size; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), p.Size-off)]
		p.fill(b, off)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
