package engine

import (
	"testing"
	"time"

	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/ext"
	"gotorrentserver/engine/picker"
	"gotorrentserver/engine/tracker"
	"gotorrentserver/metainfo"
)

func TestTransferKeepsVerifiedAcrossStop(t *testing.T) {
	mi := &metainfo.MetaInfo{PieceLength: 16 << 10, TotalLength: 40 << 10, Pieces: make([]metainfo.Hash, 3)}
	have := bitset.New(3).Set(0).Set(2)
	p, err := picker.FromMeta(mi, have, smallRand(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransfer()
	tr.pick = p
	tr.pieces[1] = &pieceBuf{data: make([]byte, 16<<10)}
	if got := tr.left(mi); got != 16<<10 {
		t.Fatalf("left %d, want one missing piece", got)
	}
	var recycled int
	tr.stop(func([]byte) { recycled++ })
	if tr.pick != nil || len(tr.pieces) != 0 || recycled != 1 {
		t.Fatalf("stop kept the picker or pieces (recycled %d)", recycled)
	}
	if got := tr.have(mi); got.Count() != 2 || !got.Test(2) {
		t.Fatalf("verified set after stop: %v", got)
	}
	if tr.complete() {
		t.Fatal("a stopped transfer is not complete")
	}
	tr.verifying = maxVerifyBacklog
	if !tr.backlogFull(mi.PieceLength) || tr.backlogFull(maxVerifyBacklog) {
		t.Fatal("backlog bound: the larger of 64 MiB and two pieces")
	}
}

func TestDiscoveryCarriesEvents(t *testing.T) {
	d := discovery{trackers: tracker.NewTiers([][]string{{"http://127.0.0.1:1/a"}}, nil)}
	d.carry(tracker.Started)
	if ev := d.take(); ev != tracker.Started || d.take() != tracker.None {
		t.Fatal("the event rides on exactly one announce")
	}
	d.failed(tracker.Started) // that announce failed: the tracker still has to hear it
	d.carry(tracker.None)
	if d.take() != tracker.Started {
		t.Fatal("a failed announce's event is lost")
	}
	d.carry(tracker.Completed)
	d.failed(tracker.Started) // a newer event waits: it wins
	if d.take() != tracker.Completed {
		t.Fatal("an older failed event replaced a newer one")
	}
	if !d.join() || d.join() {
		t.Fatal("started is announced once per run")
	}
	now := time.Unix(1_000_000, 0)
	if !d.dhtDue(now, true) || d.dhtDue(now, true) {
		t.Fatal("one DHT lookup at a time")
	}
	d.dhtRunning = false
	if d.dhtDue(now.Add(dhtWhenShort-time.Second), true) || !d.dhtDue(now.Add(dhtWhenShort), false) {
		t.Fatal("short of peers, the DHT is asked again after dhtWhenShort")
	}
	if !d.dhtNext.Equal(now.Add(dhtWhenShort + dhtEvery)) {
		t.Fatal("with enough peers, the next lookup waits dhtEvery")
	}
}

func TestPersistenceCadence(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var p persistence
	if p.due(now, false) {
		t.Fatal("nothing changed, nothing saved")
	}
	if !p.due(now, true) {
		t.Fatal("a forced save (stop, completion) always goes")
	}
	p.dirty = true
	if p.due(now.Add(resumeEvery-time.Millisecond), false) {
		t.Fatal("saved more often than every resumeEvery")
	}
	if !p.due(now.Add(resumeEvery), false) || p.dirty {
		t.Fatal("a change is saved after resumeEvery")
	}
}

func TestUploadQueueWithdraw(t *testing.T) {
	u := newUploadQueue()
	p := &peer{id: 7}
	r1, r2 := picker.Request{Piece: 1, Length: 16 << 10}, picker.Request{Piece: 2, Length: 16 << 10}
	u.queue(p, r1)
	u.queue(p, r2)
	if u.waiting[7] != p || len(p.uploads) != 2 {
		t.Fatal("queued requests not waiting")
	}
	p.uploads = withdraw(p.uploads, r1)
	p.uploads = withdraw(p.uploads, picker.Request{Piece: 9})
	if len(p.uploads) != 1 || p.uploads[0] != r2 {
		t.Fatalf("after cancel: %v", p.uploads)
	}
}

func TestSwarmIDsAndUnchoked(t *testing.T) {
	w := newSwarm()
	a, b := &peer{amChoking: true}, &peer{}
	w.add(a)
	w.add(b)
	if a.id == b.id || w.peers[a.id] != a {
		t.Fatal("ids not unique")
	}
	if w.unchoked() != 1 {
		t.Fatalf("unchoked %d", w.unchoked())
	}
	w.remove(b)
	if len(w.peers) != 1 || w.unchoked() != 0 {
		t.Fatal("removed peer still counted")
	}
}

func TestMetaPhasePieces(t *testing.T) {
	var m metaPhase
	if m.pieces() != 0 {
		t.Fatal("pieces without an info dict")
	}
	m.srv = newTestMetadataServer(40 << 10)
	if m.pieces() != 3 {
		t.Fatalf("40 KiB info dict in %d pieces, want 3", m.pieces())
	}
	m.hashing = true
	m.stop()
	if m.hashing || m.fetch != nil {
		t.Fatal("stop keeps the fetch")
	}
}

func newTestMetadataServer(size int) *ext.MetadataServer {
	return ext.NewMetadataServer(make([]byte, size))
}
