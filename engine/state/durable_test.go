package state

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"gotorrentserver/engine/resume"
)

// A second store on the same folder is refused while the first holds it,
// naming the holder; once it closes, the folder can be opened again.
func TestFolderLocked(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, t.Logf)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second open: %v, want ErrLocked naming the pid", err)
	}
	st.Close()
	st2, err := Open(dir, t.Logf)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	st2.Close()
}

// An add whose files cannot be written (the file size limit stands in for a
// full disk) fails and leaves nothing in the folder; with room it stores
// both files, and a reload finds the torrent with its folder.
func TestAddDurableOrNothing(t *testing.T) {
	mi, _, dl := fixture(t)
	dir := t.TempDir()
	st, err := Open(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := listDir(t, dir)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl}, NumPieces: mi.NumPieces(), Have: full(mi.NumPieces())}
	torrent, _ := EncodeTorrent(mi)
	record, _ := json.MarshalIndent(toRecord(&r), "", " ")
	if len(record) <= len(torrent) {
		t.Fatalf("resume record (%d bytes) not larger than the .torrent (%d): the second case proves nothing", len(record), len(torrent))
	}
	// Room for nothing, then room for the .torrent but not the record.
	for _, limit := range []int{64, len(torrent)} {
		lim := syscall.Rlimit{Cur: uint64(limit), Max: old.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		err = st.AddTorrent(mi, &r)
		syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
		if err == nil {
			t.Fatalf("add succeeded with %d bytes of room", limit)
		}
		if after := listDir(t, dir); after != before {
			t.Fatalf("a failed add (%d bytes of room) left files: %q (before %q)", limit, after, before)
		}
	}
	if err := st.AddTorrent(mi, &r); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{st.torrentPath(mi.InfoHash), st.resumePath(mi.InfoHash)} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("%s after the add: %v", p, err)
		}
	}
	entries, errs := st.Load()
	if len(errs) != 0 || len(entries) != 1 || !entries[0].HasResume || entries[0].Resume.Dir != dl {
		t.Fatalf("reload: %d entries, errors %v", len(entries), errs)
	}
}

// A record that is missing or cut short comes back as an entry that says
// why, never as nothing.
func TestLostResumeReported(t *testing.T) {
	mi, _, dl := fixture(t)
	dir := t.TempDir()
	st, err := Open(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	r := resume.Record{InfoHash: mi.InfoHash, Settings: resume.Settings{Dir: dl}, NumPieces: mi.NumPieces()}
	if err := st.AddTorrent(mi, &r); err != nil {
		t.Fatal(err)
	}
	st.Close()
	b, _ := os.ReadFile(st.resumePath(mi.InfoHash))
	for name, damage := range map[string]func(){
		"truncated": func() { os.WriteFile(st.resumePath(mi.InfoHash), b[:len(b)/2], 0o600) },
		"missing":   func() { os.Remove(st.resumePath(mi.InfoHash)) },
	} {
		damage()
		st, err := Open(dir, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		entries, errs := st.Load()
		st.Close()
		if len(errs) != 0 || len(entries) != 1 {
			t.Fatalf("%s: %d entries, errors %v", name, len(entries), errs)
		}
		if e := entries[0]; e.HasResume || e.ResumeErr == nil || !strings.Contains(e.ResumeErr.Error(), "resume record") {
			t.Fatalf("%s: HasResume %v, ResumeErr %v", name, e.HasResume, e.ResumeErr)
		}
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}
