package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path/filepath"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

// settingsJSON is GET /settings and the fields POST /settings takes. Rates
// are KiB/s as everywhere in the API; 0 is unlimited or none.
type settingsJSON struct {
	MaxDown            int64   `json:"maxdown"`
	MaxUp              int64   `json:"maxup"`
	MaxActiveDownloads int     `json:"max_active_downloads"`
	MaxActiveSeeds     int     `json:"max_active_seeds"`
	RatioLimit         float64 `json:"ratio_limit"`
	SeedTimeLimit      int64   `json:"seed_time_limit"`
	LimitAction        string  `json:"limit_action"`
	DefaultPath        string  `json:"default_path"`
}

func settingsFromGlobal(g engine.Global) settingsJSON {
	return settingsJSON{MaxDown: g.MaxDown >> 10, MaxUp: g.MaxUp >> 10, MaxActiveDownloads: g.MaxActiveDownloads,
		MaxActiveSeeds: g.MaxActiveSeeds, RatioLimit: g.RatioLimit, SeedTimeLimit: g.SeedTimeLimit,
		LimitAction: g.LimitAction, DefaultPath: g.DefaultPath}
}

func (s *Server) getSettings(ctx *fasthttp.RequestCtx) (any, error) {
	return settingsFromGlobal(s.cfg.Client.Global()), nil
}

// settingsUpdate is a POST /settings body: every field optional.
type settingsUpdate struct {
	MaxDown            *int64   `json:"maxdown"`
	MaxUp              *int64   `json:"maxup"`
	MaxActiveDownloads *int     `json:"max_active_downloads"`
	MaxActiveSeeds     *int     `json:"max_active_seeds"`
	RatioLimit         *float64 `json:"ratio_limit"`
	SeedTimeLimit      *int64   `json:"seed_time_limit"`
	LimitAction        *string  `json:"limit_action"`
	DefaultPath        *string  `json:"default_path"`
}

// postSettings applies a partial update: every field is checked before any
// is applied, and the settings are on disk before the answer, which is
// the whole settings as they now stand.
func (s *Server) postSettings(ctx *fasthttp.RequestCtx) (any, error) {
	var u settingsUpdate
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return nil, badRequest("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("bad JSON body: data after the object")
	}
	var defPath string
	if u.DefaultPath != nil {
		real, err := s.root.resolve(*u.DefaultPath)
		if err != nil {
			return nil, err
		}
		// Kept relative to the root, so moving the root keeps it valid.
		rel, err := filepath.Rel(s.root.real, real)
		if err != nil {
			return nil, errOutside(*u.DefaultPath)
		}
		if rel == "." {
			rel = ""
		}
		defPath = rel
	}
	g, err := s.cfg.Client.UpdateGlobal(func(g *engine.Global) error {
		if err := setRate(&g.MaxDown, "maxdown", u.MaxDown); err != nil {
			return err
		}
		if err := setRate(&g.MaxUp, "maxup", u.MaxUp); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			v    *int
			dst  *int
		}{{"max_active_downloads", u.MaxActiveDownloads, &g.MaxActiveDownloads}, {"max_active_seeds", u.MaxActiveSeeds, &g.MaxActiveSeeds}} {
			if f.v == nil {
				continue
			}
			if *f.v < 0 || *f.v > 1<<20 {
				return badRequest("%s must be a whole number from 0 (no limit)", f.name)
			}
			*f.dst = *f.v
		}
		if v := u.RatioLimit; v != nil {
			if *v < 0 || math.IsNaN(*v) || *v > 1e6 {
				return badRequest("ratio_limit must be 0 (none) or a positive number")
			}
			g.RatioLimit = *v
		}
		if v := u.SeedTimeLimit; v != nil {
			if *v < 0 || *v > 1<<32 {
				return badRequest("seed_time_limit must be 0 (none) or a positive number of minutes")
			}
			g.SeedTimeLimit = *v
		}
		if v := u.LimitAction; v != nil {
			if *v != "stop" && *v != "remove" {
				return badRequest(`limit_action must be "stop" or "remove"`)
			}
			g.LimitAction = *v
		}
		if u.DefaultPath != nil {
			g.DefaultPath = defPath
		}
		return nil
	})
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return nil, ae
		}
		return nil, controlError(err)
	}
	s.allCache.Store(nil)
	s.listCache.Store(nil)
	out := settingsFromGlobal(g)
	s.cfg.Client.PublishGlobal(engine.EventSettings, out)
	return out, nil
}

func setRate(dst *int64, name string, v *int64) error {
	r, err := jsonRate(name, v)
	if err != nil || v == nil {
		return err
	}
	*dst = r
	return nil
}

// addDir is the folder an add without one goes to: the default path.
func (s *Server) addDir(given string) string {
	if given == "" {
		return s.cfg.Client.Global().DefaultPath
	}
	return given
}
