package state

import (
	"bytes"
	"fmt"
	"os"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// EncodeTorrent rebuilds a .torrent from mi: the info dict spliced in byte
// for byte (so the infohash cannot change), with the trackers, web seeds and
// comment around it. Keys are written in sorted order as BEP 3 requires.
func EncodeTorrent(mi *metainfo.MetaInfo) ([]byte, error) {
	if len(mi.InfoBytes) == 0 {
		return nil, fmt.Errorf("state: %s has no info bytes", mi.InfoHash)
	}
	var b bytes.Buffer
	b.WriteByte('d')
	put := func(key string, v any) error {
		enc, err := metainfo.Encode(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%d:%s", len(key), key)
		b.Write(enc)
		return nil
	}
	var tiers []any
	for _, tier := range mi.Trackers {
		t := make([]any, len(tier))
		for i, u := range tier {
			t[i] = u
		}
		tiers = append(tiers, t)
	}
	steps := []struct {
		key  string
		skip bool
		v    any
	}{
		{"announce", len(tiers) == 0, firstTracker(mi)},
		{"announce-list", len(tiers) == 0, tiers},
		{"comment", mi.Comment == "", mi.Comment},
		{"created by", mi.CreatedBy == "", mi.CreatedBy},
		{"creation date", mi.CreationDate == 0, mi.CreationDate},
	}
	for _, s := range steps {
		if !s.skip {
			if err := put(s.key, s.v); err != nil {
				return nil, err
			}
		}
	}
	b.WriteString("4:info")
	b.Write(mi.InfoBytes)
	if len(mi.WebSeeds) > 0 {
		ws := make([]any, len(mi.WebSeeds))
		for i, w := range mi.WebSeeds {
			ws[i] = w
		}
		if err := put("url-list", ws); err != nil {
			return nil, err
		}
	}
	b.WriteByte('e')
	return b.Bytes(), nil
}

func firstTracker(mi *metainfo.MetaInfo) string {
	if len(mi.Trackers) > 0 && len(mi.Trackers[0]) > 0 {
		return mi.Trackers[0][0]
	}
	return ""
}

// AddTorrent writes the torrent's metainfo and, when r is set, its first
// resume record, both synced, before the torrent is added: an add that
// succeeds survives a crash right after it, and one that fails (disk full)
// leaves nothing behind. Implements the engine's Persister.
func (st *Store) AddTorrent(mi *metainfo.MetaInfo, r *resume.Record) error {
	raw, err := EncodeTorrent(mi)
	if err != nil {
		return err
	}
	ih := mi.InfoHash
	if r == nil {
		// A magnet's metadata: its record exists already.
		if err := st.SaveTorrent(mi, raw); err != nil {
			return err
		}
		os.Remove(st.magnetPath(ih))
		return nil
	}
	return st.addDurably(ih, func() error { return st.SaveTorrent(mi, raw) }, *r, st.torrentPath(ih))
}

// addDurably writes a new torrent's first files: first (its .torrent or
// .magnet) and then its resume record, in step with the writer so that a
// queued older record or removal of the same torrent cannot land after
// them. On failure it removes whatever it wrote.
func (st *Store) addDurably(ih metainfo.Hash, first func() error, r resume.Record, firstPath string) error {
	st.applyMu.Lock()
	defer st.applyMu.Unlock()
	st.mu.Lock()
	delete(st.pending, ih)
	st.mu.Unlock()
	err := first()
	if err == nil {
		err = st.writeResume(ih, &r)
	}
	if err != nil {
		os.Remove(firstPath)
		os.Remove(st.resumePath(ih))
		return fmt.Errorf("state: storing %s: %w", ih, err)
	}
	return nil
}
