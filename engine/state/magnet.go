package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

func (st *Store) magnetPath(ih metainfo.Hash) string {
	return filepath.Join(st.dir, ih.String()+".magnet")
}

// AddMagnet keeps a magnet link until its metadata is known, with its first
// resume record, both synced or neither; implements the engine's MagnetPersister.
// AddTorrent later replaces the link with the .torrent.
func (st *Store) AddMagnet(m *metainfo.Magnet, r resume.Record) error {
	path := st.magnetPath(m.InfoHash)
	return st.addDurably(m.InfoHash, func() error {
		return WriteFileAtomic(path, []byte(m.String()+"\n"), 0o600)
	}, r, path)
}

// loadMagnets returns the saved magnets whose metadata never arrived.
func (st *Store) loadMagnets(have map[metainfo.Hash]bool) (entries []Entry, errs []error) {
	names, _ := filepath.Glob(filepath.Join(st.dir, "*.magnet"))
	for _, path := range names {
		ih, err := metainfo.ParseHash(strings.TrimSuffix(filepath.Base(path), ".magnet"))
		if err != nil || have[ih] {
			continue // a .torrent exists: the magnet file is a leftover
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrCorrupt, err))
			continue
		}
		m, err := metainfo.ParseMagnet(strings.TrimSpace(string(b)))
		if err != nil || m.InfoHash != ih {
			errs = append(errs, fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Base(path), err))
			continue
		}
		e := Entry{Magnet: m}
		e.Resume, e.Files, e.ResumeErr = st.loadResume(ih)
		e.HasResume = e.ResumeErr == nil
		entries = append(entries, e)
	}
	return entries, errs
}

// InfoHash identifies the entry's torrent.
func (e Entry) InfoHash() metainfo.Hash {
	if e.MetaInfo != nil {
		return e.MetaInfo.InfoHash
	}
	return e.Magnet.InfoHash
}
