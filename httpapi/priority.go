package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// setFilePriority sets one file's priority: 0 skip (not downloaded, never
// created), 1 normal, 2 high (its pieces first). file indexes the
// torrent's files list as /torrentdata shows it.
func (s *Server) setFilePriority(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	var p [2]string
	for i, name := range [...]string{"file", "priority"} {
		if p[i], err = query(ctx, name); err != nil {
			return nil, err
		}
		if p[i] == "" {
			return nil, badRequest("missing %s parameter", name)
		}
	}
	file, err := parseIndex("file", p[0])
	if err != nil {
		return nil, err
	}
	prio, err := parsePriority("priority", p[1])
	if err != nil {
		return nil, err
	}
	switch err := s.cfg.Client.SetFilePriority(ih, file, prio); {
	case errors.Is(err, engine.ErrBadFile):
		return nil, badRequest("file must be an index into the torrent's files list: %v", err)
	case errors.Is(err, engine.ErrNoMetadata):
		return nil, newAPIError(http.StatusConflict, "the torrent's metadata is not fetched yet: its files are unknown")
	case err != nil:
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}

// parseIndex reads a non-negative decimal integer below 2^31.
func parseIndex(name, v string) (int, error) {
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil || (len(v) > 1 && v[0] == '0') {
		return 0, badRequest("%s must be a non-negative integer", name)
	}
	return int(n), nil
}

// parsePriority reads a file priority: 0, 1 or 2.
func parsePriority(name, v string) (int, error) {
	if len(v) != 1 || v[0] < '0' || v[0] > '2' {
		return 0, badRequest("%s must be 0 (skip), 1 (normal) or 2 (high)", name)
	}
	return int(v[0] - '0'), nil
}

// parsePriorities reads /addtorrentfile's optional priorities: one per
// file of the torrent's files list, comma-separated.
func parsePriorities(v string, mi *metainfo.MetaInfo) (string, error) {
	if v == "" {
		return "", nil
	}
	n := 0
	for _, f := range mi.Files {
		if !f.Pad {
			n++
		}
	}
	vals := strings.Split(v, ",")
	if len(vals) != n {
		return "", badRequest("priorities must list one priority per file: %d given, the torrent has %d files", len(vals), n)
	}
	out := make([]byte, n)
	for i, s := range vals {
		p, err := parsePriority("priorities", s)
		if err != nil {
			return "", err
		}
		out[i] = byte(p)
	}
	if strings.Count(string(out), string(rune(resume.PriorityNormal))) == n {
		return "", nil // all normal: as if not given
	}
	return string(out), nil
}
