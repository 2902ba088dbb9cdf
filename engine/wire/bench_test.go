package wire

import (
	"bytes"
	"testing"
)

func BenchmarkDecodePiece(b *testing.B) {
	f := AppendPiece(nil, 12, 16384, bytes.Repeat([]byte{1}, DefaultBlockLen))
	var m Message
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if err := Decode(f, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	f := AppendRequest(nil, 12, 16384, DefaultBlockLen)
	var m Message
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(f, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRequest(buf[:0], 12, 16384, DefaultBlockLen)
	}
}

func BenchmarkAppendPieceHeader(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPieceHeader(buf[:0], 12, 16384, DefaultBlockLen)
	}
}

// TestSteadyStateAllocs pins the benchmarks' promise: decoding into a reused
// Message and appending into a reused buffer allocate nothing.
func TestSteadyStateAllocs(t *testing.T) {
	var m Message
	var buf []byte
	var frames [][]byte
	for _, msg := range allMessages() {
		frames = append(frames, AppendMessage(nil, &msg))
	}
	warm := func() {
		for _, f := range frames {
			_ = Decode(f, &m)
			buf = AppendMessage(buf[:0], &m)
		}
		buf = AppendRequest(buf[:0], 1, 2, 3)
		buf = AppendPieceHeader(buf, 1, 2, 3)
		buf = AppendHave(buf, 1)
	}
	warm()
	if n := testing.AllocsPerRun(50, warm); n != 0 {
		t.Fatalf("steady-state decode/encode allocates %v times per round", n)
	}
}
