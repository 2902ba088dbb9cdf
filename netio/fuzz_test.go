package netio

import (
	"testing"

	"gotorrentserver/engine/wire"
)

// FuzzStackInput: whatever a peer sends, the stack never panics, and how
// the bytes are cut into arrivals changes nothing: the same messages, the
// same error, as when they all arrive at once. The frame bound is small so
// that the fuzzer reaches it.
func FuzzStackInput(f *testing.F) {
	stream, _ := testStream()
	f.Add(stream, byte(1))
	f.Add(stream[:100], byte(7))
	hs := wire.AppendHandshake(nil, testPeerHS)
	f.Add(append(hs, 0, 0, 0, 0, 0, 0, 0, 1, 2), byte(3))
	f.Add(append(hs, 0xff, 0xff, 0xff, 0xff), byte(2))
	f.Add(append(hs, 0, 0, 0, 3, 4, 0, 0), byte(5))
	f.Add([]byte("\x13BitTorrent protocoL"), byte(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		const limit = 3
		whole := feed(data, len(data)+1, limit, &testHandler{maxFrame: 300})
		cut := feed(data, int(chunk)%67+1, limit, &testHandler{maxFrame: 300})
		if (whole.err == nil) != (cut.err == nil) || whole.err != nil && whole.err.Error() != cut.err.Error() {
			t.Fatalf("error %v at once, %v in chunks of %d", whole.err, cut.err, int(chunk)%67+1)
		}
		if !msgsEqual(whole.msgs, cut.msgs) {
			t.Fatalf("%d messages at once, %d in chunks of %d", len(whole.msgs), len(cut.msgs), int(chunk)%67+1)
		}
		for _, m := range whole.msgs {
			if len(m.Block) > 300 || len(m.Bitfield) > 300 || len(m.ExtPayload) > 300 {
				t.Fatalf("a %v message past the frame bound", m.Type)
			}
		}
	})
}
