package netio

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// loopConn stands in for gnet's connection: AsyncWritev only records the
// callback, which the test then runs as the loop would.
type loopConn struct {
	gnet.Conn
	mu      sync.Mutex
	pending []gnet.AsyncCallback
	writes  [][][]byte
}

func (l *loopConn) AsyncWritev(bs [][]byte, cb gnet.AsyncCallback) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(bs) != 0 {
		return fmt.Errorf("data passed to AsyncWritev: %d buffers", len(bs))
	}
	l.pending = append(l.pending, cb)
	return nil
}

func (l *loopConn) Writev(bs [][]byte) (int, error) {
	l.writes = append(l.writes, append([][]byte(nil), bs...))
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n, nil
}

func (l *loopConn) OutboundBuffered() int { return 0 }

// runLoop runs the queued callbacks, as the event loop would.
func (l *loopConn) runLoop() int {
	l.mu.Lock()
	cbs := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, cb := range cbs {
		cb(l, nil)
	}
	return len(cbs)
}

// Whatever is queued between two turns of the loop leaves in order, in one
// writev of at most maxIOV buffers at a time, and every block is released
// once written.
func TestOutQueueBatchesInOrder(t *testing.T) {
	lc := &loopConn{}
	pc := newPeerConn(nil, netip.AddrPort{}, false)
	pc.c = lc
	var want bytes.Buffer
	released := 0
	const n = 700 // 1400 buffers: more than one writev may take
	for i := range n {
		hdr := []byte(fmt.Sprintf("h%d;", i))
		block := []byte(fmt.Sprintf("b%d;", i))
		want.Write(hdr)
		want.Write(block)
		pc.SendBlock(hdr, block, func() { released++ })
	}
	pc.Send([]byte("tail"))
	want.WriteString("tail")
	if pc.Buffered() != want.Len() {
		t.Fatalf("Buffered %d before the flush, want %d", pc.Buffered(), want.Len())
	}
	if runs := lc.runLoop(); runs != 1 {
		t.Fatalf("%d flushes queued for one turn of the loop, want 1", runs)
	}
	var got bytes.Buffer
	for _, w := range lc.writes {
		if len(w) > maxIOV {
			t.Fatalf("a writev of %d buffers", len(w))
		}
		for _, b := range w {
			got.Write(b)
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("bytes written differ from bytes sent, or their order")
	}
	if len(lc.writes) != (2*n+1+maxIOV-1)/maxIOV {
		t.Fatalf("%d writev calls for %d buffers", len(lc.writes), 2*n+1)
	}
	if released != n || pc.Buffered() != 0 {
		t.Fatalf("released %d of %d blocks, %d bytes still counted", released, n, pc.Buffered())
	}
	// The next send arms a new flush.
	pc.Send([]byte("again"))
	if lc.runLoop() != 1 || len(lc.writes) != (2*n+1+maxIOV-1)/maxIOV+1 {
		t.Fatal("a send after a flush was not written")
	}
}

// A closed connection drops sends but still releases their blocks.
func TestOutQueueClosedReleases(t *testing.T) {
	pc := newPeerConn(nil, netip.AddrPort{}, false)
	pc.c = &loopConn{}
	pc.closed.Store(true)
	released := false
	pc.SendBlock([]byte("h"), []byte("b"), func() { released = true })
	if !released || pc.Buffered() != 0 {
		t.Fatalf("released %v, buffered %d", released, pc.Buffered())
	}
}
