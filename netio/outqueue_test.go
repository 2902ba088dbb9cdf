package netio

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// Whatever is queued between two turns of the loop leaves in order, in one
// writev, and every block is released once written, not before: the
// read-cache views go out without a copy.
func TestOutQueueBatchesInOrder(t *testing.T) {
	pc := newPeerConn(nil, netip.AddrPort{}, false)
	lc := &memTransport{owner: pc}
	pc.tr = lc
	var want bytes.Buffer
	released := 0
	lc.onWritev = func() {
		if released != 0 {
			t.Errorf("%d blocks released before their writev", released)
		}
	}
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
		for _, b := range w {
			got.Write(b)
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("bytes written differ from bytes sent, or their order")
	}
	if len(lc.writes) != 1 {
		t.Fatalf("%d writev calls for one turn", len(lc.writes))
	}
	if released != n || pc.Buffered() != 0 {
		t.Fatalf("released %d of %d blocks, %d bytes still counted", released, n, pc.Buffered())
	}
	// The next send arms a new flush.
	pc.Send([]byte("again"))
	lc.onWritev = nil
	if lc.runLoop() != 1 || len(lc.writes) != 2 {
		t.Fatal("a send after a flush was not written")
	}
}

// A closed connection drops sends but still releases their blocks.
func TestOutQueueClosedReleases(t *testing.T) {
	pc := newPeerConn(nil, netip.AddrPort{}, false)
	pc.tr = &memTransport{owner: pc}
	pc.closed.Store(true)
	released := false
	pc.SendBlock([]byte("h"), []byte("b"), func() { released = true })
	if !released || pc.Buffered() != 0 {
		t.Fatalf("released %v, buffered %d", released, pc.Buffered())
	}
}

// gnetConn records what the gnet transport asks of gnet's connection.
type gnetConn struct {
	gnet.Conn
	writes [][][]byte
}

func (g *gnetConn) Writev(bs [][]byte) (int, error) {
	g.writes = append(g.writes, bs)
	return 0, nil
}

// Past IOV_MAX (1024) writev fails and gnet closes the connection: the
// transport cuts a long iovec into writes of at most maxIOV buffers.
func TestGnetTransportSplitsIOV(t *testing.T) {
	g := &gnetConn{}
	tr := &gnetTransport{g}
	bufs := make([][]byte, 2*maxIOV+1)
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
	}
	if err := tr.Writev(bufs); err != nil {
		t.Fatal(err)
	}
	if len(g.writes) != 3 {
		t.Fatalf("%d writev calls for %d buffers", len(g.writes), len(bufs))
	}
	i := 0
	for _, w := range g.writes {
		if len(w) > maxIOV {
			t.Fatalf("a writev of %d buffers", len(w))
		}
		for _, b := range w {
			if b[0] != byte(i) {
				t.Fatalf("buffer %d out of order", i)
			}
			i++
		}
	}
}
