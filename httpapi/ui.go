package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// The web dashboard: the files of web/, embedded in the binary, served at
// / (index.html) and /ui/<file>. They are served without authentication,
// since the sign-in form must load before anyone has a session; they hold
// no secret. Everything here is read-only after init, so safe for
// concurrent use.

//go:embed web
var webFS embed.FS

// uiPrefix is where the dashboard's files are served.
const uiPrefix = "/ui/"

// uiCSP is the dashboard's Content-Security-Policy: its own scripts,
// styles and API only, no inline code, nothing framing it.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// uiFile is one embedded file, ready to answer.
type uiFile struct {
	body        []byte
	contentType string
	etag        string
}

// uiFiles maps a path below web/ ("index.html", "lib/x.js") to its file.
var uiFiles = loadUIFiles()

func loadUIFiles() map[string]uiFile {
	files := map[string]uiFile{}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "web/")] = uiFile{body: b, contentType: uiContentType(p),
			etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic("httpapi: reading the embedded web files: " + err.Error()) // embedded: cannot fail
	}
	return files
}

// uiContentType is a file's media type by its extension. Scripts must be
// text/javascript: with nosniff, a browser refuses to run a module
// served as anything else.
func uiContentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// isUIPath reports whether p is served by serveUI.
func isUIPath(p []byte) bool {
	return string(p) == "/" || strings.HasPrefix(string(p), uiPrefix)
}

// commonHeaders go on every answer, API or dashboard: a browser must not
// guess a JSON answer's type, nor send the page's address elsewhere.
func commonHeaders(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
}

// serveUI answers / and /ui/<file>. Unknown files and folders are a JSON
// 404 (no listing); fasthttp has already resolved dot segments in the
// path, and the lookup is in the embedded table only, so nothing outside
// web/ can be named.
func (s *Server) serveUI(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", uiCSP)
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set("X-Frame-Options", "DENY")
	if s.authenticate(&ctx.Request.Header) == authOK {
		proveConn(ctx)
	} else {
		// An idle unproven connection whose headers came is never
		// evicted (see victim): a flood of page loads kept alive would
		// otherwise hold the slots. The page's few files can afford a
		// connection each before sign-in. (A body sent along was
		// skipped, too: see headerReceived.)
		ctx.SetConnectionClose()
	}
	if m := string(ctx.Method()); m != http.MethodGet && m != http.MethodHead {
		h.Set(fasthttp.HeaderAllow, "GET, HEAD")
		writeError(ctx, http.StatusMethodNotAllowed, "use GET, HEAD")
		return
	}
	name := "index.html"
	if p := string(ctx.Path()); p != "/" {
		name = strings.TrimPrefix(p, uiPrefix)
	}
	f, ok := uiFiles[name]
	if !ok || !fs.ValidPath(name) {
		writeError(ctx, http.StatusNotFound, "unknown file")
		return
	}
	h.Set(fasthttp.HeaderETag, f.etag)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatch(string(inm), f.etag) {
		ctx.SetStatusCode(http.StatusNotModified)
		return
	}
	h.SetContentType(f.contentType)
	ctx.Response.SetBodyRaw(f.body)
}

// etagMatch reports whether an If-None-Match list names etag.
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
