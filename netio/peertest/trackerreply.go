package peertest

import (
	"fmt"

	"gotorrentserver/metainfo"
)

// Tracker replies are parsed through metainfo's guarded decoder; every
// value is type-checked, so a malformed reply is an error, never a panic.

// decodeDict decodes a bencoded dictionary.
func decodeDict(body []byte) (map[string]any, error) {
	v, err := metainfo.DecodeLimits(body, metainfo.Limits{MaxSize: 1 << 20, MaxDepth: 16})
	if err != nil {
		return nil, fmt.Errorf("peertest: tracker reply %.200q: %w", body, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("peertest: tracker reply is not a dictionary: %.200q", body)
	}
	return d, nil
}

// announceError is nil for an announce reply without a failure reason.
func announceError(body []byte) error {
	d, err := decodeDict(body)
	if err != nil {
		return err
	}
	if reason, ok := d["failure reason"]; ok {
		return fmt.Errorf("peertest: tracker failure reason %.200q", text(reason))
	}
	return nil
}

// parseScrape reads h's seeder (complete) and leecher (incomplete) counts
// from a scrape reply. A swarm missing from "files" counts as empty:
// opentracker leaves out swarms with no peers.
func parseScrape(body []byte, h metainfo.Hash) (seeders, leechers int, err error) {
	d, err := decodeDict(body)
	if err != nil {
		return 0, 0, err
	}
	if reason, ok := d["failure reason"]; ok {
		return 0, 0, fmt.Errorf("peertest: tracker failure reason %.200q", text(reason))
	}
	files, ok := d["files"].(map[string]any)
	if !ok {
		return 0, 0, fmt.Errorf("peertest: scrape reply without a files dictionary: %.200q", body)
	}
	v, ok := files[string(h[:])]
	if !ok {
		return 0, 0, nil
	}
	entry, ok := v.(map[string]any)
	if !ok {
		return 0, 0, fmt.Errorf("peertest: scrape entry for %s is not a dictionary", h)
	}
	c, okC := entry["complete"].(int64)
	i, okI := entry["incomplete"].(int64)
	if !okC || !okI || c < 0 || i < 0 || c > 1<<31 || i > 1<<31 {
		return 0, 0, fmt.Errorf("peertest: scrape entry for %s has bad counts: %v, %v", h, entry["complete"], entry["incomplete"])
	}
	return int(c), int(i), nil
}

// text shows a decoded value: strings as text, anything else as Go syntax.
func text(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprintf("%#v", v)
}
