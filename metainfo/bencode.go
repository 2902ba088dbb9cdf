package metainfo

import (
	"bytes"
	"fmt"
	"math"

	"github.com/cristalhq/bencode"
)

// Limits bound what the strict scanner accepts. Untrusted input from peers,
// trackers and API clients is decoded only under limits so that a hostile
// document can neither exhaust the stack nor make us allocate unboundedly.
type Limits struct {
	MaxSize  int // total encoded size in bytes
	MaxDepth int // nesting of lists and dicts
}

// DefaultLimits suit .torrent files: the API caps uploads at 10 MiB, and no
// real torrent nests deeper than a handful of levels.
var DefaultLimits = Limits{MaxSize: 16 << 20, MaxDepth: 32}

// Validate checks that b is exactly one canonical-syntax bencode value:
// integers without leading zeros or "-0", string lengths that fit the input,
// dict keys that are strings and unique, nesting and size within lim, and no
// trailing bytes. Unsorted dict keys are accepted because real torrents carry
// them and the infohash must be taken over the bytes as they stand.
func Validate(b []byte, lim Limits) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty input", ErrBencode)
	}
	if lim.MaxSize > 0 && len(b) > lim.MaxSize {
		return fmt.Errorf("%w: %d bytes exceeds limit of %d", ErrBencode, len(b), lim.MaxSize)
	}
	s := scanner{buf: b, maxDepth: lim.MaxDepth}
	end, err := s.value(0, 0)
	if err != nil {
		return err
	}
	if end != len(b) {
		return fmt.Errorf("%w: %d trailing bytes at offset %d", ErrBencode, len(b)-end, end)
	}
	return nil
}

// Decode validates b under DefaultLimits and decodes it into the generic form:
// map[string]any, []any, int64 and []byte. Strings alias b, so b must not be
// modified while the result is in use.
func Decode(b []byte) (any, error) { return DecodeLimits(b, DefaultLimits) }

// DecodeLimits is Decode under explicit limits.
func DecodeLimits(b []byte, lim Limits) (v any, err error) {
	if err := Validate(b, lim); err != nil {
		return nil, err
	}
	// The library is only reached with input the scanner accepted, so a
	// panic here would be a bug in the scanner; convert it rather than crash.
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrBencode, r)
		}
	}()
	if err := bencode.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBencode, err)
	}
	return v, nil
}

// Encode marshals v (maps, slices, strings, []byte, integers, bencode.D).
// Dict keys come out sorted, as BEP 3 requires.
func Encode(v any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: encoder panic: %v", ErrBencode, r)
		}
	}()
	out, err = bencode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBencode, err)
	}
	return out, nil
}

// RawDictValue returns the exact encoded bytes of key's value in the
// top-level dict b, which must already be valid. The infohash is the SHA-1 of
// these bytes, never of a re-encoding.
func RawDictValue(b []byte, key string) ([]byte, bool) {
	if len(b) == 0 || b[0] != 'd' {
		return nil, false
	}
	s := scanner{buf: b}
	pos := 1
	for pos < len(b) && b[pos] != 'e' {
		kStart, kEnd, err := s.str(pos)
		if err != nil {
			return nil, false
		}
		vEnd, err := s.value(kEnd, 1)
		if err != nil {
			return nil, false
		}
		if string(b[kStart:kEnd]) == key {
			return b[kEnd:vEnd], true
		}
		pos = vEnd
	}
	return nil, false
}

type scanner struct {
	buf      []byte
	maxDepth int
}

func (s *scanner) errAt(pos int, msg string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrBencode, msg, pos)
}

// value returns the offset just past the value starting at pos.
func (s *scanner) value(pos, depth int) (int, error) {
	if pos >= len(s.buf) {
		return 0, s.errAt(pos, "unexpected end of input")
	}
	switch c := s.buf[pos]; {
	case c == 'i':
		_, end, err := s.integer(pos + 1)
		return end, err
	case c == 'l' || c == 'd':
		if s.maxDepth > 0 && depth >= s.maxDepth {
			return 0, s.errAt(pos, fmt.Sprintf("nesting deeper than %d", s.maxDepth))
		}
		if c == 'l' {
			return s.list(pos+1, depth+1)
		}
		return s.dict(pos+1, depth+1)
	case c >= '0' && c <= '9':
		_, end, err := s.str(pos)
		return end, err
	default:
		return 0, s.errAt(pos, fmt.Sprintf("unexpected byte %q", c))
	}
}

// integer parses the digits of "i...e" starting after the 'i'.
func (s *scanner) integer(pos int) (int64, int, error) {
	end := bytes.IndexByte(s.buf[pos:], 'e')
	if end < 0 {
		return 0, 0, s.errAt(pos, "unterminated integer")
	}
	digits := s.buf[pos : pos+end]
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	n, ok := parseDigits(digits)
	switch {
	case !ok:
		return 0, 0, s.errAt(pos, "malformed integer")
	case neg && n == 0:
		return 0, 0, s.errAt(pos, "negative zero")
	}
	if neg {
		n = -n
	}
	return n, pos + end + 1, nil
}

// str returns the content span of the string starting at pos.
func (s *scanner) str(pos int) (start, end int, err error) {
	colon := bytes.IndexByte(s.buf[pos:], ':')
	// 19 digits already exceed any input we could hold; stop scanning early.
	if colon < 0 || colon > 19 {
		return 0, 0, s.errAt(pos, "malformed string length")
	}
	n, ok := parseDigits(s.buf[pos : pos+colon])
	if !ok {
		return 0, 0, s.errAt(pos, "malformed string length")
	}
	start = pos + colon + 1
	if n > int64(len(s.buf)-start) {
		return 0, 0, s.errAt(pos, fmt.Sprintf("string length %d exceeds input", n))
	}
	return start, start + int(n), nil
}

func (s *scanner) list(pos, depth int) (int, error) {
	for {
		if pos >= len(s.buf) {
			return 0, s.errAt(pos, "unterminated list")
		}
		if s.buf[pos] == 'e' {
			return pos + 1, nil
		}
		end, err := s.value(pos, depth)
		if err != nil {
			return 0, err
		}
		pos = end
	}
}

func (s *scanner) dict(pos, depth int) (int, error) {
	// Small dicts dominate; a linear duplicate check beats a map until large.
	var keys [][]byte
	var seen map[string]struct{}
	for {
		if pos >= len(s.buf) {
			return 0, s.errAt(pos, "unterminated dict")
		}
		if s.buf[pos] == 'e' {
			return pos + 1, nil
		}
		if c := s.buf[pos]; c < '0' || c > '9' {
			return 0, s.errAt(pos, "dict key is not a string")
		}
		kStart, kEnd, err := s.str(pos)
		if err != nil {
			return 0, err
		}
		key := s.buf[kStart:kEnd]
		if dup := s.seenKey(&keys, &seen, key); dup {
			return 0, s.errAt(pos, fmt.Sprintf("duplicate dict key %q", key))
		}
		end, err := s.value(kEnd, depth)
		if err != nil {
			return 0, err
		}
		pos = end
	}
}

func (s *scanner) seenKey(keys *[][]byte, seen *map[string]struct{}, key []byte) bool {
	if *seen != nil {
		if _, ok := (*seen)[string(key)]; ok {
			return true
		}
		(*seen)[string(key)] = struct{}{}
		return false
	}
	for _, k := range *keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	*keys = append(*keys, key)
	if len(*keys) > 16 {
		*seen = make(map[string]struct{}, 32)
		for _, k := range *keys {
			(*seen)[string(k)] = struct{}{}
		}
	}
	return false
}

// parseDigits accepts a non-empty run of decimal digits without a leading
// zero (except "0" itself) that fits in an int64.
func parseDigits(d []byte) (int64, bool) {
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
