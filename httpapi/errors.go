package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

// Sentinel errors of the package (configuration and lifecycle).
var (
	ErrNoClient      = errors.New("httpapi: Config.Client is nil")
	ErrTokenRequired = errors.New("httpapi: a token is required unless the address is loopback")
	ErrBadToken      = errors.New("httpapi: token must be printable ASCII without spaces")
	ErrRootNotAbs    = errors.New("httpapi: download root must be an absolute path")
	ErrStarted       = errors.New("httpapi: server already started")
)

// apiError is a failure answered to the client with its status code and a
// JSON body {"error": msg}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func newAPIError(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, format, args...)
}

// engineError maps the engine's sentinels to statuses; anything else is the
// server's own failure.
func engineError(err error) *apiError {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return newAPIError(http.StatusNotFound, "unknown torrent")
	case errors.Is(err, engine.ErrExists):
		return newAPIError(http.StatusConflict, "torrent already added")
	case errors.Is(err, engine.ErrNoMetadata):
		return newAPIError(http.StatusConflict, "the torrent's metadata is not fetched yet: nothing to check")
	case errors.Is(err, engine.ErrBusy), errors.Is(err, engine.ErrMoveTarget):
		return newAPIError(http.StatusConflict, "%s", strings.TrimPrefix(err.Error(), "engine: "))
	case errors.Is(err, engine.ErrBadMove):
		return newAPIError(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "engine: "))
	default:
		return newAPIError(http.StatusInternalServerError, "%v", err)
	}
}

// errorBody is the JSON of every failure.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers {"error": msg} with status.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	b, err := json.Marshal(errorBody{Error: msg})
	if err != nil { // a string always marshals; keep the answer JSON anyway
		b = []byte(`{"error":"internal error"}`)
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// writeAPIError answers err, mapping unknown errors to 500.
func writeAPIError(ctx *fasthttp.RequestCtx, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = newAPIError(http.StatusInternalServerError, "%v", err)
	}
	if ae.status == http.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="gotorrentserver"`)
	}
	writeError(ctx, ae.status, ae.msg)
}
