package ext

import "fmt"

// dictPrefixLen returns the length of the bencoded dict at the front of b,
// looking at no more than maxLen bytes and nesting no deeper than maxDepth.
// It only finds where the dict ends; callers then run the strict
// metainfo.Validate over exactly those bytes, so this scanner may be looser
// than the real grammar (it does not check that keys are strings) without
// letting anything malformed through. It never recurses and never reads
// past maxLen, so a hostile payload costs at most maxLen steps.
func dictPrefixLen(b []byte, maxLen, maxDepth int) (int, error) {
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	if len(b) == 0 || b[0] != 'd' {
		return 0, fmt.Errorf("%w: payload does not start with a dict", ErrBadMetadataMsg)
	}
	depth := 0
	for pos := 0; pos < len(b); {
		switch c := b[pos]; {
		case c == 'd' || c == 'l':
			depth++
			if depth > maxDepth {
				return 0, fmt.Errorf("%w: nesting deeper than %d", ErrBadMetadataMsg, maxDepth)
			}
			pos++
		case c == 'e':
			depth--
			pos++
			if depth == 0 {
				return pos, nil
			}
		case c == 'i':
			end := indexFrom(b, pos+1, 'e')
			if end < 0 {
				return 0, fmt.Errorf("%w: unterminated integer at %d", ErrBadMetadataMsg, pos)
			}
			pos = end + 1
		case c >= '0' && c <= '9':
			colon := indexFrom(b, pos, ':')
			if colon < 0 {
				return 0, fmt.Errorf("%w: unterminated string length at %d", ErrBadMetadataMsg, pos)
			}
			n, ok := smallDecimal(b[pos:colon])
			if !ok || n > len(b)-colon-1 {
				return 0, fmt.Errorf("%w: string length at %d exceeds input", ErrBadMetadataMsg, pos)
			}
			pos = colon + 1 + n
		default:
			return 0, fmt.Errorf("%w: unexpected byte %q at %d", ErrBadMetadataMsg, c, pos)
		}
	}
	return 0, fmt.Errorf("%w: dict not terminated within %d bytes", ErrBadMetadataMsg, len(b))
}

func indexFrom(b []byte, from int, c byte) int {
	for i := from; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// smallDecimal parses a run of digits no longer than 9, which is more than
// any length that can fit in the bounded window; longer runs are refused
// before they can overflow.
func smallDecimal(d []byte) (int, bool) {
	if len(d) == 0 || len(d) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
