package dht

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"net/netip"
	"time"
)

const (
	tokenRotate = 5 * time.Minute
	tokenLen    = 8
)

// tokens issues and checks announce tokens: the first tokenLen bytes of
// SHA-1(secret, querier IP). The secret rotates every tokenRotate and the
// previous one stays valid, so a token lives 5 to 10 minutes and needs no
// per-querier state. Not safe for concurrent use: Node guards it.
type tokens struct {
	cur, prev [16]byte
	rotated   time.Time
}

func newTokens(now time.Time) *tokens {
	t := &tokens{rotated: now}
	rand.Read(t.cur[:])
	t.prev = t.cur
	return t
}

func (t *tokens) maybeRotate(now time.Time) {
	if now.Sub(t.rotated) >= tokenRotate {
		t.prev = t.cur
		rand.Read(t.cur[:])
		t.rotated = now
	}
}

func tokenFor(secret [16]byte, ip netip.Addr) []byte {
	h := sha1.New()
	h.Write(secret[:])
	b := ip.Unmap().AsSlice()
	h.Write(b)
	return h.Sum(nil)[:tokenLen]
}

func (t *tokens) issue(ip netip.Addr, now time.Time) []byte {
	t.maybeRotate(now)
	return tokenFor(t.cur, ip)
}

func (t *tokens) valid(tok []byte, ip netip.Addr, now time.Time) bool {
	t.maybeRotate(now)
	return hmac.Equal(tok, tokenFor(t.cur, ip)) || hmac.Equal(tok, tokenFor(t.prev, ip))
}
