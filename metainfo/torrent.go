package metainfo

import (
	"crypto/sha1"
	"fmt"
	"math"
	"strings"
)

// MaxPieceLength bounds piece length: the engine holds whole pieces in
// memory while they download, so a hostile 4 GiB piece must not be accepted.
const MaxPieceLength = 256 << 20

// Parse reads a .torrent file. It never panics; every error wraps one of the
// package's sentinel errors and says what is wrong.
func Parse(b []byte) (*MetaInfo, error) {
	root, err := Decode(b)
	if err != nil {
		return nil, err
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, invalid("top level is not a dictionary")
	}
	raw, ok := RawDictValue(b, "info")
	if !ok {
		return nil, invalid("missing info dictionary")
	}
	info, ok := top["info"].(map[string]any)
	if !ok {
		return nil, invalid("info is not a dictionary")
	}
	mi, err := ParseInfo(raw, info)
	if err != nil {
		return nil, err
	}
	mi.Trackers = trackerTiers(top)
	mi.WebSeeds = webSeeds(top["url-list"])
	mi.Comment = text(top, "comment")
	mi.CreatedBy = text(top, "created by")
	if n, ok := top["creation date"].(int64); ok {
		mi.CreationDate = n
	}
	return mi, nil
}

// ParseInfoBytes builds a MetaInfo from a bare info dict, as fetched from
// peers for a magnet link: trackers then come from the magnet, not from here.
func ParseInfoBytes(raw []byte) (*MetaInfo, error) {
	v, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	info, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("info is not a dictionary")
	}
	return ParseInfo(raw, info)
}

// ParseInfo interprets an already decoded info dict whose encoded form is raw.
func ParseInfo(raw []byte, info map[string]any) (*MetaInfo, error) {
	_, hasPieces := info["pieces"]
	if v, _ := info["meta version"].(int64); v == 2 && !hasPieces {
		return nil, ErrV2Only
	}
	mi := &MetaInfo{
		InfoHash:  sha1.Sum(raw),
		InfoBytes: raw,
		Hybrid:    info["meta version"] != nil && hasPieces,
	}
	mi.Name = utf8Text(info, "name")
	if err := checkComponent(mi.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	pl, ok := info["piece length"].(int64)
	if !ok {
		return nil, invalid("missing piece length")
	}
	if pl <= 0 || pl > MaxPieceLength {
		return nil, invalid("piece length %d out of range (1..%d)", pl, MaxPieceLength)
	}
	mi.PieceLength = pl
	if p, ok := info["private"].(int64); ok && p == 1 {
		mi.Private = true
	}
	if err := parseFiles(mi, info); err != nil {
		return nil, err
	}
	pieces, ok := info["pieces"].([]byte)
	if !ok {
		return nil, invalid("missing pieces")
	}
	if len(pieces)%20 != 0 {
		return nil, invalid("pieces length %d is not a multiple of 20", len(pieces))
	}
	want := (mi.TotalLength + pl - 1) / pl
	if int64(len(pieces)/20) != want {
		return nil, invalid("%d piece hashes for %d bytes in pieces of %d (want %d)",
			len(pieces)/20, mi.TotalLength, pl, want)
	}
	mi.Pieces = make([]Hash, len(pieces)/20)
	for i := range mi.Pieces {
		copy(mi.Pieces[i][:], pieces[i*20:])
	}
	return mi, nil
}

func parseFiles(mi *MetaInfo, info map[string]any) error {
	length, single := info["length"]
	list, multi := info["files"]
	switch {
	case single && multi:
		return invalid("info has both length and files")
	case single:
		n, ok := length.(int64)
		if !ok || n < 0 {
			return invalid("length is not a non-negative integer")
		}
		mi.SingleFile = true
		mi.Files = []File{{Path: []string{mi.Name}, Length: n}}
		mi.TotalLength = n
	case multi:
		files, ok := list.([]any)
		if !ok || len(files) == 0 {
			return invalid("files is not a non-empty list")
		}
		mi.Files = make([]File, 0, len(files))
		for i, f := range files {
			file, err := parseFile(f, mi.TotalLength)
			if err != nil {
				return invalid("file %d: %v", i, err)
			}
			mi.Files = append(mi.Files, file)
			mi.TotalLength += file.Length
		}
		if err := checkUniquePaths(mi.Files); err != nil {
			return err
		}
	default:
		return invalid("info has neither length nor files")
	}
	if mi.TotalLength <= 0 {
		return invalid("total length is zero")
	}
	return nil
}

func parseFile(v any, offset int64) (File, error) {
	d, ok := v.(map[string]any)
	if !ok {
		return File{}, fmt.Errorf("not a dictionary")
	}
	n, ok := d["length"].(int64)
	if !ok || n < 0 {
		return File{}, fmt.Errorf("length is not a non-negative integer")
	}
	if n > math.MaxInt64-offset {
		return File{}, fmt.Errorf("total length overflows")
	}
	p := d["path.utf-8"]
	if _, ok := p.([]any); !ok {
		p = d["path"]
	}
	parts, ok := p.([]any)
	if !ok || len(parts) == 0 {
		return File{}, fmt.Errorf("path is not a non-empty list")
	}
	f := File{Length: n, Offset: offset, Path: make([]string, len(parts))}
	for i, c := range parts {
		s, ok := c.([]byte)
		if !ok {
			return File{}, fmt.Errorf("path component %d is not a string", i)
		}
		if err := checkComponent(string(s)); err != nil {
			return File{}, fmt.Errorf("path %q: %v", joinPath(parts), err)
		}
		f.Path[i] = string(s)
	}
	if attr, ok := d["attr"].([]byte); ok && strings.IndexByte(string(attr), 'p') >= 0 {
		f.Pad = true
	}
	return f, nil
}

// checkComponent makes path traversal impossible: a component can name only
// an entry inside its parent folder.
func checkComponent(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty path component")
	case s == "." || s == "..":
		return fmt.Errorf("path component %q not allowed", s)
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("path component %q contains a separator or NUL", s)
	}
	return nil
}

// checkUniquePaths rejects two files at one path, and a file whose path is
// also a folder of another file: neither can be laid out on disk. Pad files
// are exempt since they are never written.
func checkUniquePaths(files []File) error {
	seen := make(map[string]bool, len(files)) // path -> is a file (false: a folder)
	for _, f := range files {
		if f.Pad {
			continue
		}
		for i := 1; i < len(f.Path); i++ {
			dir := strings.Join(f.Path[:i], "/")
			if seen[dir] {
				return invalid("path %q is both a file and a folder", dir)
			}
			seen[dir] = false
		}
		p := strings.Join(f.Path, "/")
		if _, dup := seen[p]; dup {
			return invalid("duplicate path %q", p)
		}
		seen[p] = true
	}
	return nil
}

func trackerTiers(top map[string]any) [][]string {
	var tiers [][]string
	seen := map[string]bool{}
	if list, ok := top["announce-list"].([]any); ok {
		for _, t := range list {
			tl, ok := t.([]any)
			if !ok {
				continue
			}
			var tier []string
			for _, u := range tl {
				if s, ok := u.([]byte); ok && len(s) > 0 && !seen[string(s)] {
					seen[string(s)] = true
					tier = append(tier, string(s))
				}
			}
			if len(tier) > 0 {
				tiers = append(tiers, tier)
			}
		}
	}
	// BEP 12: announce-list, when usable, supersedes announce.
	if a := text(top, "announce"); len(tiers) == 0 && a != "" {
		tiers = [][]string{{a}}
	}
	return tiers
}

func webSeeds(v any) []string {
	switch v := v.(type) {
	case []byte:
		if len(v) > 0 {
			return []string{string(v)}
		}
	case []any:
		var out []string
		for _, u := range v {
			if s, ok := u.([]byte); ok && len(s) > 0 {
				out = append(out, string(s))
			}
		}
		return out
	}
	return nil
}

func text(d map[string]any, key string) string {
	s, _ := d[key].([]byte)
	return string(s)
}

// utf8Text prefers the key's ".utf-8" variant, which older clients wrote
// beside a name in the local code page.
func utf8Text(d map[string]any, key string) string {
	if s, ok := d[key+".utf-8"].([]byte); ok && len(s) > 0 {
		return string(s)
	}
	return text(d, key)
}

func joinPath(parts []any) string {
	var sb strings.Builder
	for i, p := range parts {
		if i > 0 {
			sb.WriteByte('/')
		}
		if s, ok := p.([]byte); ok {
			sb.Write(s)
		}
	}
	return sb.String()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
