package metainfo

import (
	"fmt"
	"testing"
)

// BenchmarkParseLarge parses a torrent of 100,000 pieces and 10,000 files.
func BenchmarkParseLarge(b *testing.B) {
	const nFiles, nPieces, pl = 10000, 100000, 16384
	total := int64(nPieces) * pl
	files := make([]any, nFiles)
	per := total / nFiles
	for i := range files {
		files[i] = map[string]any{"length": per, "path": []any{fmt.Sprintf("dir%03d", i%100), fmt.Sprintf("file%05d.bin", i)}}
	}
	doc, err := Encode(map[string]any{
		"announce": "http://127.0.0.1:6969/announce",
		"info": map[string]any{"name": "large", "piece length": int64(pl),
			"pieces": make([]byte, 20*nPieces), "files": files},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		mi, err := Parse(doc)
		if err != nil || mi.NumPieces() != nPieces || len(mi.Files) != nFiles {
			b.Fatalf("%v", err)
		}
	}
}
