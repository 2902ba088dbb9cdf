package engine

import (
	"crypto/sha1"

	"gotorrentserver/metainfo"
)

// ObfuscatedHash is SHA-1("req2" + infohash): the name an encrypted (MSE)
// connection gives its torrent, so that an eavesdropper cannot read the
// infohash off the wire. The network layer sends it when it dials and
// looks incoming ones up with SessionByObfuscatedHash.
func ObfuscatedHash(ih metainfo.Hash) [20]byte {
	h := sha1.New()
	h.Write([]byte("req2"))
	h.Write(ih[:])
	var out [20]byte
	h.Sum(out[:0])
	return out
}

// SessionByObfuscatedHash returns the session whose ObfuscatedHash is h, or
// nil. An index kept with the session table (register and Remove), so an
// incoming encrypted connection costs one lookup, not a hash per torrent.
// Lock-free, like Session.
func (c *Client) SessionByObfuscatedHash(h [20]byte) *Session {
	if v, ok := c.obfuscated.Load(h); ok {
		return v.(*Session)
	}
	return nil
}
