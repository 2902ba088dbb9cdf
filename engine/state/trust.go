package state

import (
	"github.com/bits-and-blooms/bitset"

	"gotorrentserver/engine/resume"
	"gotorrentserver/engine/storage"
)

// TrustedHave returns the verified pieces of e that can be used without
// rehashing, or nil when the torrent must be rechecked. It stats files, so
// call it at start-up, not from a session. Files are looked at beneath root
// (the download root; "" means the torrent's own folder).
//
// Every file holding a verified piece must still have its full length (we
// size files fully on first write). A file that was complete when the record
// was written must also keep its modification time: a changed mtime there
// means someone else wrote it. Files still downloading legitimately change
// between records (a kill -9 loses at most the pieces written since the last
// one, and never corrupts the ones before), so their time is not compared.
// A skipped file that does not exist holds nothing: its bytes of verified
// pieces (those it shares with wanted files) must be in the part file,
// which must have its full size; the part file's time is not compared, as
// it changes while neighbouring files download.
func TrustedHave(e Entry, root string) *bitset.BitSet {
	mi := e.MetaInfo
	if mi == nil || !e.HasResume || e.Resume.NumPieces != mi.NumPieces() || len(e.Resume.Have) != (mi.NumPieces()+7)/8 {
		return nil
	}
	have := bitset.New(uint(mi.NumPieces()))
	for i := range mi.NumPieces() {
		if e.Resume.Have[i/8]&(0x80>>(i%8)) != 0 {
			have.Set(uint(i))
		}
	}
	if have.None() {
		return have
	}
	st, err := storage.OpenWith(e.Resume.Dir, mi, storage.Options{Root: root})
	if err != nil {
		return nil
	}
	now := st.FileStats()
	partOK := -1 // unknown until a skipped file needs the part file
	k := 0       // index into the non-pad stats
	for fi, f := range mi.Files {
		if f.Pad {
			continue
		}
		cur, saved := now[k], FileRecord{Size: -2}
		if k < len(e.Files) {
			saved = e.Files[k]
		}
		skipped := e.Resume.FilePriority(k) == resume.PrioritySkip
		k++
		first, last := mi.FilePieces(fi)
		some, all, slots := false, last >= first, true
		for p := first; p <= last; p++ {
			if have.Test(uint(p)) {
				some = true
				slots = slots && st.HasSlot(p)
			} else {
				all = false
			}
		}
		switch {
		case !some:
		case skipped && cur.Size < 0:
			// Never created: its bytes of the verified pieces it shares
			// with wanted files are in the part file, which is sized to
			// all its slots on first write.
			if partOK < 0 {
				partOK = 0
				if ps := st.PartStat(); ps.Size == st.PartSize() {
					partOK = 1
				}
			}
			if !slots || partOK == 0 {
				return nil
			}
		case cur.Size != f.Length:
			return nil
		case all && (saved.Size != cur.Size || saved.ModTime != cur.ModTime.UnixNano()):
			return nil
		}
	}
	return have
}
