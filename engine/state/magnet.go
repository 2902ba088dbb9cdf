package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gotorrentserver/metainfo"
)

func (st *Store) magnetPath(ih metainfo.Hash) string {
	return filepath.Join(st.dir, ih.String()+".magnet")
}

// AddMagnet keeps a magnet link until its metadata is known; implements
// engine.MagnetPersister. AddTorrent later replaces it with the .torrent.
func (st *Store) AddMagnet(m *metainfo.Magnet) error {
	return WriteFileAtomic(st.magnetPath(m.InfoHash), []byte(m.String()+"\n"), 0o600)
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
		if r, files, ok := st.loadResume(ih); ok {
			e.Resume, e.Files, e.HasResume = r, files, true
		}
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
