package httpapi

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// The operator's per-torrent controls added beside the spec's calls, in the
// spec's style: GET with query parameters, answering {"infohash": "..."}.

// maxLabel bounds a label in bytes; labels are for lists, not documents.
const maxLabel = 128

// maxTrackerURL bounds an announce URL, as browsers bound URLs.
const maxTrackerURL = 2048

// controlErrors maps the engine's control errors to statuses beside
// engineError's.
func controlError(err error) *apiError {
	switch {
	case errors.Is(err, engine.ErrBadSetting):
		return badRequest("%v", strings.TrimPrefix(err.Error(), "engine: "))
	case errors.Is(err, engine.ErrNotRunning):
		return newAPIError(http.StatusConflict, "the torrent is not running")
	case errors.Is(err, engine.ErrTrackerExists):
		return newAPIError(http.StatusConflict, "tracker already listed")
	case errors.Is(err, engine.ErrNoTracker):
		return newAPIError(http.StatusNotFound, "the torrent has no such tracker")
	case errors.Is(err, engine.ErrPrivate):
		return newAPIError(http.StatusConflict, "private torrent: its trackers cannot be changed")
	}
	return engineError(err)
}

// torrentCall reads the infohash and the named parameters (each required
// unless optional lists it) and runs do, answering like every mutating call.
func (s *Server) torrentCall(ctx *fasthttp.RequestCtx, names []string, do func(ih metainfo.Hash, p []string) error) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	p := make([]string, len(names))
	for i, name := range names {
		if p[i], err = query(ctx, name); err != nil {
			return nil, err
		}
		if !ctx.QueryArgs().Has(name) {
			return nil, badRequest("missing %s parameter", name)
		}
	}
	if err := do(ih, p); err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, ae
		}
		return nil, controlError(err)
	}
	return s.changed(ih), nil
}

func (s *Server) setLabel(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"label"}, func(ih metainfo.Hash, p []string) error {
		label, err := parseLabel(p[0])
		if err != nil {
			return err
		}
		return s.cfg.Client.SetLabel(ih, label)
	})
}

// parseLabel accepts printable UTF-8 up to maxLabel bytes; "" clears.
func parseLabel(v string) (string, error) {
	if len(v) > maxLabel || !utf8.ValidString(v) {
		return "", badRequest("label must be UTF-8 text of at most %d bytes", maxLabel)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return "", badRequest("label must not contain control characters")
		}
	}
	return strings.TrimSpace(v), nil
}

func (s *Server) setSequential(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"value"}, func(ih metainfo.Hash, p []string) error {
		on, err := parseBool("value", p[0], false)
		if err != nil {
			return err
		}
		return s.cfg.Client.SetSequential(ih, on)
	})
}

func (s *Server) setRatioLimit(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"ratio"}, func(ih metainfo.Hash, p []string) error {
		r, err := strconv.ParseFloat(p[0], 64)
		if err != nil || math.IsNaN(r) || math.IsInf(r, 0) || r > 1e6 || (r < 0 && r != -1) {
			return badRequest("ratio must be -1 (follow the global setting), 0 (none) or a positive number")
		}
		return s.cfg.Client.SetRatioLimit(ih, apiToEngineLimit(r))
	})
}

func (s *Server) setSeedTimeLimit(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"minutes"}, func(ih metainfo.Hash, p []string) error {
		m, err := strconv.ParseInt(p[0], 10, 64)
		if err != nil || m < -1 || m > 1<<32 {
			return badRequest("minutes must be -1 (follow the global setting), 0 (none) or a positive whole number")
		}
		return s.cfg.Client.SetSeedTimeLimit(ih, int64(apiToEngineLimit(float64(m))))
	})
}

// apiToEngineLimit maps the API's limits (-1 global, 0 none) to the
// engine's (0 global, negative none), whose zero value follows the global
// setting.
func apiToEngineLimit(v float64) float64 {
	switch v {
	case -1:
		return 0
	case 0:
		return -1
	}
	return v
}

// engineToAPILimit is the reverse of apiToEngineLimit.
func engineToAPILimit(v float64) float64 {
	switch {
	case v == 0:
		return -1
	case v < 0:
		return 0
	}
	return v
}

func (s *Server) reannounce(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, nil, func(ih metainfo.Hash, _ []string) error {
		return s.cfg.Client.Reannounce(ih)
	})
}

func (s *Server) addPeer(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"host"}, func(ih metainfo.Hash, p []string) error {
		ap, err := netip.ParseAddrPort(p[0])
		if err != nil || ap.Port() == 0 {
			return badRequest("host must be IP:PORT (IPv6 as [addr]:port)")
		}
		return s.cfg.Client.AddPeer(ih, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	})
}

func (s *Server) addTracker(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"url"}, func(ih metainfo.Hash, p []string) error {
		if err := checkTrackerURL(p[0]); err != nil {
			return err
		}
		return s.cfg.Client.AddTracker(ih, p[0])
	})
}

func (s *Server) removeTracker(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"url"}, func(ih metainfo.Hash, p []string) error {
		if p[0] == "" {
			return badRequest("missing url parameter")
		}
		return s.cfg.Client.RemoveTracker(ih, p[0])
	})
}

// checkTrackerURL accepts http, https and udp announce URLs with a host.
func checkTrackerURL(v string) error {
	u, err := url.Parse(v)
	if v == "" || len(v) > maxTrackerURL || err != nil || u.Host == "" ||
		(u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "udp") {
		return badRequest("url must be an http, https or udp tracker URL of at most %d bytes", maxTrackerURL)
	}
	return nil
}

func (s *Server) setQueuePosition(ctx *fasthttp.RequestCtx) (any, error) {
	return s.torrentCall(ctx, []string{"position"}, func(ih metainfo.Hash, p []string) error {
		n, err := strconv.Atoi(p[0])
		if err != nil || n < 0 {
			return badRequest("position must be a whole number from 0 (first)")
		}
		return s.cfg.Client.SetQueuePosition(ih, n)
	})
}
