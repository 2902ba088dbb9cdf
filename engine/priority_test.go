package engine

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
	"gotorrentserver/metainfo"
)

// rangeLog records the byte ranges a web seed was asked for, per path.
type rangeLog struct {
	mu     sync.Mutex
	ranges map[string][][2]int64
}

func (l *rangeLog) hook(w http.ResponseWriter, r *http.Request) bool {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if a, b, found := strings.Cut(spec, "-"); ok && found {
		from, _ := strconv.ParseInt(a, 10, 64)
		to, _ := strconv.ParseInt(b, 10, 64)
		l.mu.Lock()
		l.ranges[r.URL.Path] = append(l.ranges[r.URL.Path], [2]int64{from, to})
		l.mu.Unlock()
	}
	return false
}

// overlaps reports whether any range asked of path touches [from, to).
func (l *rangeLog) overlaps(path string, from, to int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.ranges[path] {
		if r[0] < to && r[1] >= from {
			return true
		}
	}
	return false
}

// A skipped file in the middle of a torrent is not downloaded and not
// created; the pieces it shares with its neighbours are, its bytes of them
// kept in the part file; the torrent seeds with progress 1. Wanted again,
// it downloads, its bytes from the part file moved into it.
func TestSkippedFileWebSeed(t *testing.T) {
	ws := newWebServer(t)
	log := &rangeLog{ranges: map[string][][2]int64{}}
	ws.setHook(log.hook)
	// 64 KiB pieces: piece 3 holds the end of a.bin and the start of
	// b.bin, piece 7 its end and c.bin's start; pieces 4-6 are b.bin's own.
	names, sizes := []string{"a.bin", "b.bin", "c.bin"}, []int{200000, 300000, 150000}
	mi, data := webTorrent(t, ws, names, sizes)
	prio := string([]byte{resume.PriorityNormal, resume.PrioritySkip, resume.PriorityNormal})
	f := newWebFixture(t, mi, nil, Settings{Priorities: prio})
	f.waitSeeding()
	f.checkFiles("web torrent", map[string][]byte{"a.bin": data["a.bin"], "c.bin": data["c.bin"]})
	mid := filepath.Join(f.dir, "web torrent", "b.bin")
	if _, err := os.Stat(mid); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the skipped file exists: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, storage.PartFileName(mi.InfoHash))); err != nil {
		t.Fatalf("no part file: %v", err)
	}
	own0, own1 := int64(4*65536-200000), int64(7*65536-200000)
	if log.overlaps("/web torrent/b.bin", own0, own1) {
		t.Fatalf("asked for bytes only the skipped file holds: %v", log.ranges)
	}
	sn := f.s.Snapshot()
	if sn.State != StateSeeding || sn.Left != 0 || sn.Progress() != 1 || sn.Wanted != sn.Size-3*65536 || sn.Priorities != prio {
		t.Fatalf("snapshot: %v left %d progress %v wanted %d of %d priorities %q", sn.State, sn.Left, sn.Progress(), sn.Wanted, sn.Size, sn.Priorities)
	}
	if sn.Have != mi.NumPieces()-3 {
		t.Fatalf("have %d pieces, want all but b.bin's own 3", sn.Have)
	}

	// Errors first: nothing changes.
	for _, c := range []struct {
		file, prio int
		err        error
	}{{3, 1, ErrBadFile}, {-1, 1, ErrBadFile}, {1, 3, ErrBadPriority}, {1, -1, ErrBadPriority}} {
		if err := f.c.SetFilePriority(mi.InfoHash, c.file, c.prio); !errors.Is(err, c.err) {
			t.Fatalf("file %d priority %d: %v, want %v", c.file, c.prio, err, c.err)
		}
	}
	if err := f.c.SetFilePriority(metainfo.Hash{1}, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown torrent: %v", err)
	}

	if err := f.c.SetFilePriority(mi.InfoHash, 1, resume.PriorityNormal); err != nil {
		t.Fatal(err)
	}
	if sn := f.s.Snapshot(); sn.State != StateDownloading || sn.Left != 3*65536 {
		t.Fatalf("after wanting b.bin: %v, left %d", sn.State, sn.Left)
	}
	f.waitSeeding()
	f.checkFiles("web torrent", data)
	if sn := f.s.Snapshot(); sn.Progress() != 1 || sn.Have != mi.NumPieces() || sn.FilePriority(1) != resume.PriorityNormal {
		t.Fatalf("after b.bin: progress %v, have %d", sn.Progress(), sn.Have)
	}
}

// Skipping a file already downloaded keeps its data and the torrent seeds
// it still; its pieces stay verified.
func TestSkipDownloadedFileKeepsData(t *testing.T) {
	ws := newWebServer(t)
	names, sizes := []string{"a.bin", "b.bin", "c.bin"}, []int{200000, 300000, 150000}
	mi, data := webTorrent(t, ws, names, sizes)
	f := newWebFixture(t, mi, nil, Settings{})
	f.waitSeeding()
	if err := f.c.SetFilePriority(mi.InfoHash, 1, resume.PrioritySkip); err != nil {
		t.Fatal(err)
	}
	f.sync()
	sn := f.s.Snapshot()
	if sn.State != StateSeeding || sn.Have != mi.NumPieces() || sn.Progress() != 1 {
		t.Fatalf("after skipping a downloaded file: %v, have %d, progress %v", sn.State, sn.Have, sn.Progress())
	}
	f.checkFiles("web torrent", data)
	if err := f.c.Recheck(mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the recheck to find every piece", func() bool {
		sn := f.s.Snapshot()
		return sn.State == StateSeeding && sn.Have == mi.NumPieces()
	})
}

// A piece takes the highest priority of the files it touches, pad files
// left out (piece 1 holds only the skipped file and a pad).
func TestHighPriorityFileFirst(t *testing.T) {
	prio, skip := piecePriorities(&metainfo.MetaInfo{
		PieceLength: 10, TotalLength: 45, Pieces: make([]metainfo.Hash, 5),
		Files: []metainfo.File{{Length: 15}, {Length: 5, Offset: 15, Pad: true}, {Length: 25, Offset: 20}},
	}, Settings{Priorities: string([]byte{resume.PrioritySkip, resume.PriorityHigh})})
	if want := []uint8{0, 0, 2, 2, 2}; !bytes.Equal(prio, want) {
		t.Fatalf("piece priorities %v, want %v", prio, want)
	}
	if len(skip) != 3 || !skip[0] || skip[1] || skip[2] {
		t.Fatalf("skipped files %v", skip)
	}
	if p, s := piecePriorities(&metainfo.MetaInfo{PieceLength: 10, TotalLength: 10, Pieces: make([]metainfo.Hash, 1),
		Files: []metainfo.File{{Length: 10}}}, Settings{Priorities: "\x01"}); p != nil || s != nil {
		t.Fatal("all normal must cost nothing")
	}
}
