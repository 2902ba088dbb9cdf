package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/valyala/fasthttp"
)

// errUnauthorized is answered with 401 and a WWW-Authenticate challenge.
var errUnauthorized = newAPIError(http.StatusUnauthorized, "missing or wrong bearer token")

// errCrossOrigin refuses a cookie-authorized request from another site's
// page: SameSite=Strict already keeps the cookie from such requests in
// current browsers; this holds where it does not.
var errCrossOrigin = newAPIError(http.StatusForbidden, "cross-origin request refused")

// authResult is what a request's credentials prove.
type authResult int

const (
	authNone        authResult = iota // neither token nor session
	authOK                            // the token, a session, or authentication off
	authCrossOrigin                   // a session, from another origin's page
)

// authenticate checks the bearer token, then the session cookie. Called
// on the connection's goroutine; keeps no header bytes.
func (s *Server) authenticate(hdr *fasthttp.RequestHeader) authResult {
	if s.tokenHash == nil || s.authorizedHeader(hdr) {
		return authOK
	}
	if _, ok := s.sessions.fromHeader(hdr); ok {
		if !sameOrigin(hdr) {
			return authCrossOrigin
		}
		return authOK
	}
	return authNone
}

// authorized reports whether the request may use the API.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	return s.authenticate(&ctx.Request.Header) == authOK
}

// refuseAuth answers a request authenticate did not accept.
func refuseAuth(ctx *fasthttp.RequestCtx, r authResult) {
	if r == authCrossOrigin {
		refuseClose(ctx, errCrossOrigin)
		return
	}
	unauthorized(ctx)
}

// authorizedHeader checks "Authorization: Bearer <token>". Both sides are
// hashed first so the constant-time compare does not leak the token's
// length either.
func (s *Server) authorizedHeader(hdr *fasthttp.RequestHeader) bool {
	if s.tokenHash == nil {
		return true
	}
	h := hdr.Peek(fasthttp.HeaderAuthorization)
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

// headerReceived runs as soon as a request's headers are read, before
// fasthttp reads its body. A request without the token has its body
// declared empty, so it is never buffered: fasthttp would otherwise read up
// to MaxBody before the handler could refuse it, and 100 such uploads held
// a gigabyte. The handler then answers 401 and closes the connection (the
// body would be read as the next request otherwise), draining what the
// client still sends so the answer is not lost to a reset.
//
// /login's body is read without credentials, since it carries them, but
// only up to maxLoginBody (past it readError answers 413).
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	n := h.ContentLength()
	if n == 0 {
		return fasthttp.RequestConfig{}
	}
	if isLoginURI(h.RequestURI()) {
		return fasthttp.RequestConfig{MaxRequestBodySize: maxLoginBody}
	}
	if s.authenticate(h) != authOK && (n > 0 || n == -1) { // -1: chunked
		h.SetContentLength(0)
	}
	return fasthttp.RequestConfig{}
}

// isLoginURI reports whether a request URI is /login, query or not.
func isLoginURI(uri []byte) bool {
	for i, c := range uri {
		if c == '?' {
			uri = uri[:i]
			break
		}
	}
	return string(uri) == loginPath
}

// stripQuery is a request URI without its query.
func stripQuery(uri []byte) []byte {
	for i, c := range uri {
		if c == '?' {
			return uri[:i]
		}
	}
	return uri
}

// unauthorized answers 401 and closes the connection after it: a client
// without the token gets one answer per connection, so it cannot park
// idle keep-alive connections on the server's slots.
func unauthorized(ctx *fasthttp.RequestCtx) {
	markLinger(ctx, unauthLinger)
	writeAPIError(ctx, errUnauthorized)
	ctx.SetConnectionClose()
}

// expect answers "Expect: 100-continue" requests before their body is sent:
// a client without the token, or announcing a body over the limit, gets its
// JSON error at once instead of uploading first. Runs on the connection's
// goroutine before the body is read. A client may start its upload
// anyway, so a refusal drains before closing.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if string(ctx.Path()) == loginPath {
		if ctx.Request.Header.ContentLength() > maxLoginBody {
			refuseClose(ctx, tooLarge(maxLoginBody))
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusContinue
	}
	if r := s.authenticate(&ctx.Request.Header); r != authOK {
		refuseAuth(ctx, r)
		return ctx.Response.StatusCode()
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
