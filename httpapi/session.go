package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Browser sign-in: POST /login exchanges the API token for a session
// cookie, which then authorizes every call like the bearer header. The
// cookie is HttpOnly (no script reads it) and SameSite=Strict (no other
// site's page sends it); a cookie-authorized request naming another origin
// is refused besides (see authenticate).

const (
	// DefaultSessionLifetime is Config.SessionLifetime when it is zero.
	DefaultSessionLifetime = 24 * time.Hour
	// sessionCookie is the session cookie's name.
	sessionCookie = "gts_session"
	// maxSessions bounds the sessions kept; a new one past it replaces
	// the one closest to expiry, so logins cannot grow memory.
	maxSessions = 64
	// maxLoginBody bounds /login's body: {"token": "..."} is tiny, and
	// the body is read before anyone is known.
	maxLoginBody = 4 << 10
	// Failed logins per source address (IPv6: /64) allowed in a window
	// before 429: enough for typing mistakes, far too few to guess.
	loginFailures = 10
	loginWindow   = time.Minute
	// maxLoginSources bounds the addresses the limiter remembers.
	maxLoginSources = 4096
)

// Public paths: answered without credentials, each checking its own.
const (
	loginPath   = "/login"
	logoutPath  = "/logout"
	sessionPath = "/session"
)

// publicRoutes are served before authentication (see serve).
var publicRoutes = map[string]struct {
	method string
	h      func(*Server, *fasthttp.RequestCtx)
}{
	loginPath:   {http.MethodPost, (*Server).login},
	logoutPath:  {http.MethodPost, (*Server).logout},
	sessionPath: {http.MethodGet, (*Server).session},
}

// loginRequest is /login's body.
type loginRequest struct {
	Token string `json:"token"`
}

// sessionInfo answers /login, /logout and /session. Expires (RFC 3339) is
// when the session ends; absent from /logout, and from /session when
// authentication is off.
type sessionInfo struct {
	OK      bool   `json:"ok"`
	Expires string `json:"expires,omitempty"`
}

// sessionStore holds the live sessions by the SHA-256 of their secret, so
// the memory of the process does not hold usable cookies. Safe for
// concurrent use.
type sessionStore struct {
	lifetime time.Duration
	now      func() time.Time

	mu      sync.Mutex
	expires map[[sha256.Size]byte]time.Time
}

func newSessionStore(lifetime time.Duration) *sessionStore {
	if lifetime <= 0 {
		lifetime = DefaultSessionLifetime
	}
	return &sessionStore{lifetime: lifetime, now: time.Now, expires: make(map[[sha256.Size]byte]time.Time)}
}

// create starts a session and returns its secret (64 hex digits) and end.
func (st *sessionStore) create() (string, time.Time) {
	var secret [32]byte
	rand.Read(secret[:])
	cookie := hex.EncodeToString(secret[:])
	exp := st.now().Add(st.lifetime)
	h := sha256.Sum256([]byte(cookie))
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.expires) >= maxSessions {
		var oldest [sha256.Size]byte
		var first time.Time
		for k, e := range st.expires {
			if first.IsZero() || e.Before(first) {
				oldest, first = k, e
			}
		}
		delete(st.expires, oldest)
	}
	st.expires[h] = exp
	return cookie, exp
}

// lookup returns the end of the session whose secret is cookie; ok is
// false for unknown and expired ones (which are forgotten).
func (st *sessionStore) lookup(cookie []byte) (time.Time, bool) {
	if len(cookie) != 64 {
		return time.Time{}, false
	}
	h := sha256.Sum256(cookie)
	st.mu.Lock()
	defer st.mu.Unlock()
	exp, ok := st.expires[h]
	if ok && !st.now().Before(exp) {
		delete(st.expires, h)
		ok = false
	}
	return exp, ok
}

// remove forgets the session whose secret is cookie, if any.
func (st *sessionStore) remove(cookie []byte) {
	h := sha256.Sum256(cookie)
	st.mu.Lock()
	delete(st.expires, h)
	st.mu.Unlock()
}

// fromHeader is the session a request's cookie names.
func (st *sessionStore) fromHeader(hdr *fasthttp.RequestHeader) (time.Time, bool) {
	c := hdr.Cookie(sessionCookie)
	if len(c) == 0 {
		return time.Time{}, false
	}
	return st.lookup(c)
}

// sameOrigin reports whether a request's Origin header, when it has one,
// names this server (the Host it was asked for). Browsers send Origin on
// every cross-origin request and on same-origin ones but GET and HEAD.
func sameOrigin(hdr *fasthttp.RequestHeader) bool {
	o := hdr.Peek("Origin")
	if len(o) == 0 {
		return true
	}
	u, err := url.Parse(string(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // including "null": a sandboxed or file: page
	}
	return strings.EqualFold(u.Host, string(hdr.Host()))
}

// loginLimiter counts failed logins per source address in fixed windows.
// Safe for concurrent use.
type loginLimiter struct {
	mu  sync.Mutex
	now func() time.Time
	by  map[netip.Addr]*failWindow
}

type failWindow struct {
	start time.Time
	fails int
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{now: time.Now, by: make(map[netip.Addr]*failWindow)}
}

// blocked reports whether ip has used up its failures, and for how long.
func (l *loginLimiter) blocked(ip netip.Addr) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.by[ip]
	if w == nil {
		return 0, false
	}
	left := loginWindow - l.now().Sub(w.start)
	if left <= 0 {
		delete(l.by, ip)
		return 0, false
	}
	return left, w.fails >= loginFailures
}

// fail counts a failed login from ip.
func (l *loginLimiter) fail(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.by[ip]
	if w == nil || now.Sub(w.start) >= loginWindow {
		if w == nil && len(l.by) >= maxLoginSources {
			l.pruneLocked(now)
		}
		w = &failWindow{start: now}
		l.by[ip] = w
	}
	w.fails++
}

// pruneLocked forgets ended windows, then, if still full, any one: past
// that many addresses the limiter protects each only approximately.
func (l *loginLimiter) pruneLocked(now time.Time) {
	for ip, w := range l.by {
		if now.Sub(w.start) >= loginWindow {
			delete(l.by, ip)
		}
	}
	for ip := range l.by {
		if len(l.by) < maxLoginSources {
			break
		}
		delete(l.by, ip)
	}
}

// remoteIP is the source key of ctx's client.
func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return sourceKey(a)
	}
	return netip.Addr{}
}

// refuseClose answers err and, as after a 401, closes the connection: a
// failed login costs a connection like a request without the token, and
// a refused request's body may have been skipped (see headerReceived), so
// the connection cannot serve another.
func refuseClose(ctx *fasthttp.RequestCtx, err *apiError) {
	writeAPIError(ctx, err)
	markLinger(ctx, unauthLinger)
	ctx.SetConnectionClose()
}

// login answers POST /login {"token": "..."}.
func (s *Server) login(ctx *fasthttp.RequestCtx) {
	ip := remoteIP(ctx)
	if wait, ok := s.logins.blocked(ip); ok {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		refuseClose(ctx, newAPIError(http.StatusTooManyRequests, "too many failed logins; retry later"))
		return
	}
	var req loginRequest
	body := ctx.Request.Body()
	if len(body) > maxLoginBody {
		refuseClose(ctx, tooLarge(maxLoginBody))
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.logins.fail(ip)
		refuseClose(ctx, badRequest("want a JSON body {\"token\": \"...\"}"))
		return
	}
	if s.tokenHash != nil {
		got := sha256.Sum256([]byte(req.Token))
		if subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
			s.logins.fail(ip)
			refuseClose(ctx, newAPIError(http.StatusUnauthorized, "wrong token"))
			return
		}
	}
	proveConn(ctx)
	cookie, exp := s.sessions.create()
	maxAge := int((s.sessions.lifetime + time.Second - 1) / time.Second)
	setSessionCookie(ctx, cookie, maxAge)
	writeJSON(ctx, sessionInfo{OK: true, Expires: exp.UTC().Format(time.RFC3339)})
}

// logout answers POST /logout: the session is forgotten and the cookie
// cleared. It answers 200 whether or not there was a session.
func (s *Server) logout(ctx *fasthttp.RequestCtx) {
	hdr := &ctx.Request.Header
	known := false
	if c := hdr.Cookie(sessionCookie); len(c) > 0 {
		if !sameOrigin(hdr) {
			refuseClose(ctx, errCrossOrigin)
			return
		}
		if _, ok := s.sessions.lookup(c); ok {
			proveConn(ctx)
			s.sessions.remove(c)
			known = true
		}
	}
	if !known && !s.authorizedHeader(hdr) {
		ctx.SetConnectionClose() // its body, if any, was skipped
	}
	setSessionCookie(ctx, "", 0)
	writeJSON(ctx, sessionInfo{OK: true})
}

// session answers GET /session: 200 while the cookie's session lasts (or
// when authentication is off), else 401.
func (s *Server) session(ctx *fasthttp.RequestCtx) {
	if s.tokenHash == nil {
		writeJSON(ctx, sessionInfo{OK: true})
		return
	}
	exp, ok := s.sessions.fromHeader(&ctx.Request.Header)
	if !ok {
		refuseClose(ctx, newAPIError(http.StatusUnauthorized, "no session; sign in"))
		return
	}
	proveConn(ctx)
	writeJSON(ctx, sessionInfo{OK: true, Expires: exp.UTC().Format(time.RFC3339)})
}

// setSessionCookie sets (maxAge > 0) or clears the session cookie. It is
// marked Secure when the client reached a TLS proxy in front of the
// daemon; over plain HTTP a Secure cookie would never come back.
func setSessionCookie(ctx *fasthttp.RequestCtx, value string, maxAge int) {
	c := sessionCookie + "=" + value + "; Path=/; Max-Age=" + strconv.Itoa(maxAge) + "; HttpOnly; SameSite=Strict"
	if ctx.IsTLS() || strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https") {
		c += "; Secure"
	}
	ctx.Response.Header.Add(fasthttp.HeaderSetCookie, c)
}

// writeJSON answers v with 200.
func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, http.StatusInternalServerError, "internal error")
		return
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBodyRaw(b)
}

// servePublic answers the public paths; false when path is not one.
func (s *Server) servePublic(ctx *fasthttp.RequestCtx) bool {
	rt, ok := publicRoutes[string(ctx.Path())]
	if !ok {
		return false
	}
	if string(ctx.Method()) != rt.method {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, rt.method)
		refuseClose(ctx, newAPIError(http.StatusMethodNotAllowed, "use %s", rt.method))
		return true
	}
	rt.h(s, ctx)
	return true
}
