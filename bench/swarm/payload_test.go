package swarm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gotorrentserver/metainfo"
)

func TestPayloadReadAtIsPositionIndependent(t *testing.T) {
	p := Payload{Seed: 3, Size: 100_003}
	whole := make([]byte, p.Size)
	if n, err := p.ReadAt(whole, 0); n != len(whole) || err != nil {
		t.Fatalf("ReadAt whole = %d, %v", n, err)
	}
	for _, r := range [][2]int64{{0, 1}, {1, 7}, {5, 16}, {8, 8}, {13, 4099}, {99_990, 13}, {100_002, 1}} {
		b := make([]byte, r[1])
		n, err := p.ReadAt(b, r[0])
		if n != len(b) || err != nil {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", r[1], r[0], n, err)
		}
		if !bytes.Equal(b, whole[r[0]:r[0]+r[1]]) {
			t.Errorf("bytes at %d+%d differ from the same range read whole", r[0], r[1])
		}
	}
	b := make([]byte, 10)
	if n, err := p.ReadAt(b, p.Size-4); n != 4 || !errors.Is(err, io.EOF) || !bytes.Equal(b[:4], whole[p.Size-4:]) {
		t.Errorf("read across the end = %d, %v", n, err)
	}
	if _, err := p.ReadAt(b, p.Size); !errors.Is(err, io.EOF) {
		t.Errorf("read at the end: %v, want EOF", err)
	}
	other := make([]byte, p.Size)
	Payload{Seed: 4, Size: p.Size}.ReadAt(other, 0)
	if bytes.Equal(other[:4096], whole[:4096]) {
		t.Error("two seeds give the same bytes")
	}
	if bytes.Equal(whole[:4096], whole[4096:8192]) {
		t.Error("the payload repeats itself")
	}
}

// The torrent built from the generator must be the one the project's own
// create makes from the written file: same piece hashes, same geometry.
func TestMakeTorrentMatchesCreateOfWrittenPayload(t *testing.T) {
	p := Payload{Seed: 9, Size: 3<<20 + 12_345}
	const pieceLen = 256 << 10
	b, mi, err := MakeTorrent(p, "payload.bin", pieceLen)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "payload.bin")
	if err := WritePayload(p, path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != p.Size {
		t.Fatalf("written payload: %v, %v", st, err)
	}
	ref, err := metainfo.Create(path, metainfo.CreateOptions{PieceLength: pieceLen})
	if err != nil {
		t.Fatal(err)
	}
	want, err := metainfo.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	if mi.InfoHash != want.InfoHash {
		t.Errorf("infohash %s, create of the written file gives %s", mi.InfoHash, want.InfoHash)
	}
	if mi.NumPieces() != 13 || mi.TotalLength != p.Size || !mi.SingleFile || mi.Name != "payload.bin" {
		t.Errorf("geometry: %d pieces, %d bytes, single %v, name %q", mi.NumPieces(), mi.TotalLength, mi.SingleFile, mi.Name)
	}
	withTracker, err := TorrentFile(p, pieceLen, "payload.bin", concat(mi.Pieces), "http://127.0.0.1:1/announce")
	if err != nil {
		t.Fatal(err)
	}
	mt, err := metainfo.Parse(withTracker)
	if err != nil {
		t.Fatal(err)
	}
	if mt.InfoHash != mi.InfoHash || len(mt.Trackers) != 1 || bytes.Equal(withTracker, b) {
		t.Errorf("announce changed the infohash or was not written: %s %v", mt.InfoHash, mt.Trackers)
	}
}

func concat(hs []metainfo.Hash) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func BenchmarkPayloadFill(b *testing.B) {
	p := Payload{Seed: 1, Size: 1 << 40}
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(len(buf)))
	off := int64(0)
	for b.Loop() {
		p.fill(buf, off)
		off += int64(len(buf))
	}
}
