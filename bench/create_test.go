package bench

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"gotorrentserver/metainfo"
)

// BenchmarkCreate1GiB hashes the same 1 GiB file with our `create` and with
// mktorrent in the same run, both from the page cache, and reports MB/s.
func BenchmarkCreate1GiB(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	path := filepath.Join(dir, "one-gib.bin")
	writeRandomFile(b, path, size)
	b.Run("gotorrentserver", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := metainfo.Create(path, metainfo.CreateOptions{PieceLength: 1 << 20}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mktorrent", func(b *testing.B) {
		mk, err := exec.LookPath("mktorrent")
		if err != nil {
			b.Skip("SKIP (tool missing): mktorrent not installed")
		}
		out := filepath.Join(dir, "mk.torrent")
		b.SetBytes(size)
		for b.Loop() {
			os.Remove(out)
			cmd := exec.Command(mk, "-l", "20", "-t", fmt.Sprint(runtime.NumCPU()), "-o", out, path)
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("mktorrent: %v %s", err, msg)
			}
		}
	})
}

func writeRandomFile(b *testing.B, path string, size int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	for written := 0; written < size; written += len(block) {
		rand.Read(block)
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
}
