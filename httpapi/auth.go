package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/valyala/fasthttp"
)

// errUnauthorized is answered with 401 and a WWW-Authenticate challenge.
var errUnauthorized = newAPIError(http.StatusUnauthorized, "missing or wrong bearer token")

// authorized checks "Authorization: Bearer <token>". Both sides are hashed
// first so the constant-time compare does not leak the token's length
// either. Called on the connection's goroutine; keeps no header bytes.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.tokenHash == nil {
		return true
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const scheme = "bearer "
	if len(h) <= len(scheme) {
		return false
	}
	for i := range len(scheme) {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != scheme[i] {
			return false
		}
	}
	got := sha256.Sum256(h[len(scheme):])
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// expect answers "Expect: 100-continue" requests before their body is sent:
// a client without the token, or announcing a body over the limit, gets its
// JSON error at once instead of uploading first. Runs on the connection's
// goroutine before the body is read. A client may start its upload
// anyway, so a refusal drains before closing.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if !s.authorized(ctx) {
		s.markLingerUpload(ctx)
		writeAPIError(ctx, errUnauthorized)
		return http.StatusUnauthorized
	}
	proveConn(ctx)
	if n := ctx.Request.Header.ContentLength(); n > s.cfg.MaxBody {
		s.markLingerUpload(ctx)
		writeAPIError(ctx, tooLarge(s.cfg.MaxBody))
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusContinue
}

func tooLarge(limit int) *apiError {
	return newAPIError(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", limit)
}
