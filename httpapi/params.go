package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/valyala/fasthttp"

	"gotorrentserver/metainfo"
)

// maxRateKiB bounds rate parameters: 4 TiB/s is beyond any link, and the
// conversion to bytes/s stays far from int64 overflow.
const maxRateKiB = 1 << 32

// query returns the single value of a query parameter ("" when absent) as
// a fresh string, so nothing of the request outlives the handler. A
// repeated parameter is ambiguous and refused.
func query(ctx *fasthttp.RequestCtx, name string) (string, error) {
	vals := ctx.QueryArgs().PeekMulti(name)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return string(vals[0]), nil
	default:
		return "", badRequest("parameter %s given more than once", name)
	}
}

// parseInfoHash accepts exactly 40 hex digits.
func parseInfoHash(s string) (metainfo.Hash, error) {
	if s == "" {
		return metainfo.Hash{}, badRequest("missing infohash parameter")
	}
	h, err := metainfo.ParseHash(s)
	if err != nil {
		return h, badRequest("infohash must be exactly 40 hex digits")
	}
	return h, nil
}

// parseRate reads a rate in KiB/s (decimal digits only, 0 = unlimited) and
// returns bytes/s.
func parseRate(name, s string) (int64, error) {
	if s == "" {
		return 0, badRequest("missing %s parameter", name)
	}
	if len(s) > 12 {
		return 0, badRequest("%s must be an integer KiB/s from 0 to %d", name, int64(maxRateKiB))
	}
	var v int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, badRequest("%s must be an integer KiB/s from 0 to %d", name, int64(maxRateKiB))
		}
		v = v*10 + int64(s[i]-'0')
	}
	if v > maxRateKiB {
		return 0, badRequest("%s must be an integer KiB/s from 0 to %d", name, int64(maxRateKiB))
	}
	return v << 10, nil
}

// parseOptionalRate is parseRate with absence meaning unlimited.
func parseOptionalRate(name, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return parseRate(name, s)
}

// parseBool accepts exactly "true" or "false"; absence gives def.
func parseBool(name, s string, def bool) (bool, error) {
	switch s {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("%s must be true or false", name)
}

// magnetRequest is the /addmagnet body.
type magnetRequest struct {
	URL       string `json:"url"`
	TargetDir string `json:"targetdir"`
	MaxDown   *int64 `json:"maxdown"` // KiB/s, 0 or absent = unlimited
	MaxUp     *int64 `json:"maxup"`
	// Added beside the spec's fields.
	Start      *bool  `json:"start"` // absent = true
	Label      string `json:"label"`
	Sequential bool   `json:"sequential"`
}

// addMagnet is a validated /addmagnet request; rates in bytes/s.
type addMagnet struct {
	magnet         *metainfo.Magnet
	targetDir      string // as given; resolved against the root by the caller
	maxDown, maxUp int64
	start          bool
	label          string
	sequential     bool
}

// parseMagnetBody decodes and checks an /addmagnet body: one JSON object,
// no unknown fields, a parsable magnet, rates within range. It does not
// look at the file system.
func parseMagnetBody(body []byte) (addMagnet, error) {
	var req magnetRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return addMagnet{}, badRequest("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return addMagnet{}, badRequest("bad JSON body: data after the object")
	}
	if req.URL == "" {
		return addMagnet{}, badRequest("missing url")
	}
	m, err := metainfo.ParseMagnet(req.URL)
	if err != nil {
		return addMagnet{}, badRequest("%v", err)
	}
	out := addMagnet{magnet: m, targetDir: req.TargetDir, start: req.Start == nil || *req.Start, sequential: req.Sequential}
	if out.label, err = parseLabel(req.Label); err != nil {
		return addMagnet{}, err
	}
	if out.maxDown, err = jsonRate("maxdown", req.MaxDown); err != nil {
		return addMagnet{}, err
	}
	if out.maxUp, err = jsonRate("maxup", req.MaxUp); err != nil {
		return addMagnet{}, err
	}
	return out, nil
}

func jsonRate(name string, v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || *v > maxRateKiB {
		return 0, badRequest("%s must be an integer KiB/s from 0 to %d", name, int64(maxRateKiB))
	}
	return *v << 10, nil
}
