package wire

import (
	crand "crypto/rand"
	"io"
	"strconv"
	"strings"
)

// PeerIDPrefix is our Azureus-style client tag: GT, version 0.0.0.1.
const PeerIDPrefix = "-GT0001-"

// peerIDAlphabet is 64 URL-unreserved characters, so a byte masked to six
// bits picks one without modulo bias.
const peerIDAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-."

// NewPeerID returns PeerIDPrefix followed by 12 random characters drawn from
// a 64-character URL-unreserved alphabet (72 bits of randomness). Printable
// characters are chosen over raw bytes because the peer id travels in every
// tracker announce URL: unreserved characters need no percent-escaping, keep
// announces short and keep logs readable, and 72 bits is ample to avoid
// collisions among peers (libtorrent makes the same choice). rand nil means
// crypto/rand; if rand fails part way the rest comes from crypto/rand, so a
// broken reader can never yield a predictable id. Safe from any goroutine
// that owns rand.
func NewPeerID(rand io.Reader) [20]byte {
	var id [20]byte
	n := copy(id[:], PeerIDPrefix)
	tail := id[n:]
	got := 0
	if rand != nil {
		got, _ = io.ReadFull(rand, tail)
	}
	if got < len(tail) {
		crand.Read(tail[got:]) // never fails since Go 1.24
	}
	for i, b := range tail {
		tail[i] = peerIDAlphabet[b&63]
	}
	return id
}

// azureusClients maps the two-letter code of "-XXvvvv-" peer ids. Note the
// case: LT is libtorrent (Rasterbar), as used by qBittorrent and Deluge
// builds; lt is rakshasa's libTorrent behind rTorrent.
var azureusClients = map[string]string{
	"GT": "GoTorrentServer",
	"LT": "libtorrent (Rasterbar)",
	"lt": "libTorrent (rakshasa)",
	"TR": "Transmission",
	"qB": "qBittorrent",
	"UT": "µTorrent",
	"UW": "µTorrent Web",
	"BT": "BitTorrent",
	"DE": "Deluge",
	"AZ": "Vuze",
	"BI": "BiglyBT",
	"KT": "KTorrent",
	"FD": "Free Download Manager",
	"WW": "WebTorrent",
}

// ClientName makes a best-effort human label from a peer id, such as
// "libtorrent (Rasterbar) 2.0.8" for "-LT2080-...", "aria2 1.36.0" for
// "A2-1-36-0-...", or "Transmission 3.00". Unrecognised ids give "". The
// result contains only printable ASCII or names from our own table, so it is
// safe for logs and the API. Safe from any goroutine.
func ClientName(id [20]byte) string {
	if name, ok := azureusName(id); ok {
		return name
	}
	if string(id[:3]) == "A2-" {
		if v := dashVersion(id[3:]); v != "" {
			return "aria2 " + v
		}
		return "aria2"
	}
	return ""
}

// azureusName decodes "-XXabcd-" where a..c are version components, 0-9
// then A-Z (or a-z) for 10-35: libtorrent writes 2.0.10 as "20A0". The
// fourth character is shown only when it is a non-zero digit, because many
// clients put a release-type letter there (µTorrent "355W", Deluge "211s").
func azureusName(id [20]byte) (string, bool) {
	if id[0] != '-' || id[7] != '-' || !alnum(id[1]) || !alnum(id[2]) {
		return "", false
	}
	code := string(id[1:3])
	var v [3]int
	for i, c := range id[3:6] {
		n, ok := versionDigit(c)
		if !ok {
			return "", false
		}
		v[i] = n
	}
	if !alnum(id[6]) {
		return "", false
	}
	name, known := azureusClients[code]
	if !known {
		name = "unknown (" + code + ")"
	}
	var ver string
	switch {
	case code == "TR" && v[0] < 4:
		// Transmission before 4.0 wrote major.minor with a two-digit minor.
		ver = strconv.Itoa(v[0]) + "." + string(id[4:6])
	default:
		parts := []string{strconv.Itoa(v[0]), strconv.Itoa(v[1]), strconv.Itoa(v[2])}
		if id[6] >= '1' && id[6] <= '9' {
			parts = append(parts, string(id[6]))
		}
		ver = strings.Join(parts, ".")
	}
	return name + " " + ver, true
}

func versionDigit(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10, true
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10, true
	}
	return 0, false
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// dashVersion reads "1-36-0-" style components (digits separated by '-',
// up to three) from the start of b.
func dashVersion(b []byte) string {
	var parts []string
	start := 0
	for i := 0; i < len(b) && len(parts) < 3; i++ {
		c := b[i]
		if c == '-' {
			if i == start {
				return ""
			}
			parts = append(parts, string(b[start:i]))
			start = i + 1
			continue
		}
		if c < '0' || c > '9' || i-start >= 3 {
			return ""
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ".")
}
