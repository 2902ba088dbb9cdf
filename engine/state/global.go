package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// The daemon's global settings and queue order, each one JSON file in the
// state folder written atomically and synced before the call returns, so
// an API change that was answered survives a kill -9.

func (st *Store) globalPath() string { return filepath.Join(st.dir, "settings.json") }
func (st *Store) queuePath() string  { return filepath.Join(st.dir, "queue.json") }

// globalRecord is settings.json. Rates are bytes/s here, as in the engine.
type globalRecord struct {
	MaxDown            int64   `json:"maxdown"`
	MaxUp              int64   `json:"maxup"`
	MaxActiveDownloads int     `json:"max_active_downloads"`
	MaxActiveSeeds     int     `json:"max_active_seeds"`
	RatioLimit         float64 `json:"ratio_limit"`
	SeedTimeLimit      int64   `json:"seed_time_limit"`
	LimitAction        string  `json:"limit_action"`
	DefaultPath        string  `json:"default_path"`
}

// SaveGlobal writes the global settings; implements engine.GlobalPersister.
func (st *Store) SaveGlobal(g resume.Global) error {
	b, err := json.MarshalIndent(globalRecord(g), "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return WriteFileAtomic(st.globalPath(), append(b, '\n'), 0o600)
}

// LoadGlobal reads the saved global settings; ok is false when none were
// saved yet. A file that cannot be read is an error (ErrCorrupt): the
// daemon says so and starts from its flags.
func (st *Store) LoadGlobal() (g resume.Global, ok bool, err error) {
	b, err := os.ReadFile(st.globalPath())
	if errors.Is(err, os.ErrNotExist) {
		return g, false, nil
	}
	var rec globalRecord
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return g, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, st.globalPath(), err)
	}
	return resume.Global(rec), true, nil
}

// SaveQueue writes the queue order; implements engine.GlobalPersister.
func (st *Store) SaveQueue(order []metainfo.Hash) error {
	list := make([]string, len(order))
	for i, ih := range order {
		list[i] = ih.String()
	}
	b, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return WriteFileAtomic(st.queuePath(), append(b, '\n'), 0o600)
}

// LoadQueue reads the saved queue order (nil when none was saved).
// Entries that are not infohashes are skipped.
func (st *Store) LoadQueue() ([]metainfo.Hash, error) {
	b, err := os.ReadFile(st.queuePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var list []string
	if err == nil {
		err = json.Unmarshal(b, &list)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, st.queuePath(), err)
	}
	out := make([]metainfo.Hash, 0, len(list))
	for _, s := range list {
		if ih, err := metainfo.ParseHash(s); err == nil {
			out = append(out, ih)
		}
	}
	return out, nil
}
