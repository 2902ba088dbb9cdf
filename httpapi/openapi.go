package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// The API's OpenAPI 3 document, served at /openapi.json. Response schemas
// are built from the Go types the handlers answer with (their json tags),
// so a field added to an answer shows in the document without a second
// edit; the paths and parameters are listed here, and a test walks every
// route against both.

// param is one query parameter of an operation.
type param struct {
	name, typ, desc string
	required        bool
}

// op documents one method of one path.
type op struct {
	summary string
	params  []param
	// body is the JSON request body's Go type (nil: none); rawBody names a
	// non-JSON body's media type instead.
	body    any
	rawBody string
	// resp is the 200 answer's Go type; respType names a non-JSON answer's
	// media type instead.
	resp     any
	respType string
	errors   []int
}

var ihParam = param{"infohash", "string", "40 hex digits", true}

func mutating(summary string, params ...param) op {
	return op{summary: summary, params: append([]param{ihParam}, params...), resp: okBody{}, errors: []int{400, 404}}
}

// apiDoc lists every route; TestOpenAPIWalksEveryRoute keeps it equal to
// routes and postBeside.
var apiDoc = map[string]map[string]op{
	"/alldata":     {"get": {summary: "Every torrent, as the seed API spec lists it, and the upload side over all torrents", resp: allData{}}},
	"/torrents":    {"get": {summary: "Every torrent in a compact form for lists: the names of the values once (fields), then each torrent as an array of those values (rows)", resp: listJSON{}}},
	"/torrentdata": {"get": {summary: "One torrent", params: []param{ihParam}, resp: sessionJSON{}, errors: []int{400, 404}}},
	"/addtorrentfile": {"post": {summary: "Add a .torrent file (the body)", rawBody: "application/x-bittorrent", params: []param{
		{"path", "string", "folder relative to the download root or absolute inside it; default: the default_path setting", false},
		{"start", "boolean", "start at once (default true)", false},
		{"maxdown", "integer", "KiB/s, 0 = unlimited", false},
		{"maxup", "integer", "KiB/s, 0 = unlimited", false},
		{"label", "string", "the torrent's label", false},
		{"sequential", "boolean", "download pieces in order", false},
		{"priorities", "string", "file priorities in files order, comma separated: 0 skip, 1 normal, 2 high", false},
	}, resp: okBody{}, errors: []int{400, 409, 413}}},
	"/addmagnet":     {"post": {summary: "Add a magnet link", body: magnetRequest{}, resp: okBody{}, errors: []int{400, 409}}},
	"/stoptorrent":   {"get": mutating("Stop a torrent")},
	"/starttorrent":  {"get": mutating("Start a torrent (under queue limits: queue it)")},
	"/removetorrent": {"get": mutating("Remove a torrent", param{"delete", "boolean", "also delete its files", false})},
	"/setdownrate":   {"get": mutating("Set a torrent's download limit", param{"rate", "integer", "KiB/s, 0 = unlimited", true})},
	"/setuprate":     {"get": mutating("Set a torrent's upload limit", param{"rate", "integer", "KiB/s, 0 = unlimited", true})},
	"/recheck":       {"get": mutating("Hash the torrent's data again")},
	"/setlabel":      {"get": mutating("Set or clear a torrent's label", param{"label", "string", "empty clears", true})},
	"/setsequential": {"get": mutating("Download pieces in order or rarest first", param{"value", "boolean", "", true})},
	"/setratiolimit": {"get": mutating("Set a torrent's ratio limit", param{"ratio", "number", "-1 follows the global setting, 0 none", true})},
	"/setseedtimelimit": {"get": mutating("Set a torrent's seed-time limit",
		param{"minutes", "integer", "-1 follows the global setting, 0 none", true})},
	"/reannounce":       {"get": mutating("Announce to the trackers and the DHT now")},
	"/addpeer":          {"get": mutating("Tell a torrent about a peer", param{"host", "string", "IP:PORT, IPv6 as [addr]:port", true})},
	"/addtracker":       {"get": mutating("Add a tracker in a tier of its own", param{"url", "string", "http, https or udp", true})},
	"/removetracker":    {"get": mutating("Remove a tracker", param{"url", "string", "", true})},
	"/setqueueposition": {"get": mutating("Move a torrent in the queue", param{"position", "integer", "0 = first", true})},
	"/settings": {
		"get":  {summary: "The global settings", resp: settingsJSON{}},
		"post": {summary: "Change some global settings (a partial object)", body: settingsUpdate{}, resp: settingsJSON{}, errors: []int{400}},
	},
	"/setfilepriority": {"get": mutating("Set a file's priority",
		param{"file", "integer", "index in the torrent's files list", true},
		param{"priority", "integer", "0 skip, 1 normal, 2 high", true})},
	"/movetorrent": {"get": mutating("Move a torrent's data to another folder inside the download root",
		param{"path", "string", "folder relative to the download root or absolute inside it", true})},
	"/events": {"get": {summary: "Server-Sent Events: added, removed, state, progress, completed, error, limit, settings, reset; resume with Last-Event-ID",
		params:   []param{{"last_event_id", "integer", "resume after this event id (the Last-Event-ID header wins)", false}},
		respType: "text/event-stream", errors: []int{400, 503}}},
	"/stats":        {"get": {summary: "The daemon at a glance: totals, rates, peers, torrents per state, free space, uptime, version", resp: statsJSON{}}},
	"/metrics":      {"get": {summary: "Prometheus metrics", respType: "text/plain"}},
	"/openapi.json": {"get": {summary: "This document", respType: "application/json"}},
	"/logs": {"get": {summary: "The daemon's recent log lines (the last 500), oldest first",
		params: []param{{"after", "integer", "only lines with a greater id (the last answer's last)", false}},
		resp:   logsJSON{}, errors: []int{400}}},
	// Browser sign-in (session.go): answered without credentials.
	"/login": {"post": {summary: "Exchange the API token for a session cookie (gts_session, HttpOnly, SameSite=Strict)",
		body: loginRequest{}, resp: sessionInfo{}, errors: []int{400, 413, 429}}},
	"/logout":  {"post": {summary: "End the cookie's session and clear the cookie", resp: sessionInfo{}, errors: []int{403}}},
	"/session": {"get": {summary: "Whether the session cookie is valid, and until when", resp: sessionInfo{}}},
}

var (
	openAPIOnce sync.Once
	openAPIBody []byte
)

func (s *Server) openAPI(ctx *fasthttp.RequestCtx) (any, error) {
	openAPIOnce.Do(func() {
		b, err := json.MarshalIndent(buildOpenAPI(), "", " ")
		if err != nil {
			panic(err) // static values: cannot fail
		}
		openAPIBody = b
	})
	return rawJSON(openAPIBody), nil
}

func buildOpenAPI() map[string]any {
	paths := map[string]any{}
	for path, ops := range apiDoc {
		item := map[string]any{}
		for method, o := range ops {
			item[method] = o.openAPI()
		}
		paths[path] = item
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "GoTorrentServer API", "version": "1",
			"description": "The seed API spec's calls (field names kept byte for byte) and the calls added beside them. Rates are KiB/s, byte counts in the spec's fields whole KiB."},
		"security":   []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"paths":      paths,
	}
}

func (o op) openAPI() map[string]any {
	out := map[string]any{"summary": o.summary}
	var ps []any
	for _, p := range o.params {
		ps = append(ps, map[string]any{"name": p.name, "in": "query", "required": p.required,
			"description": p.desc, "schema": map[string]any{"type": p.typ}})
	}
	if ps != nil {
		out["parameters"] = ps
	}
	switch {
	case o.body != nil:
		out["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(o.body))}}}
	case o.rawBody != "":
		out["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			o.rawBody: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
	}
	ok := map[string]any{"description": "OK"}
	switch {
	case o.resp != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(o.resp))}}
	case o.respType != "":
		ok["content"] = map[string]any{o.respType: map[string]any{}}
	}
	responses := map[string]any{"200": ok}
	errSchema := map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(errorBody{}))}}
	for _, code := range append([]int{401}, o.errors...) {
		responses[itoa(code)] = map[string]any{"description": http.StatusText(code), "content": errSchema}
	}
	out["responses"] = responses
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// schemaOf is the JSON schema of what encoding/json makes of t: structs by
// their json tags (every field without omitempty required, no others
// allowed), pointers nullable.
func schemaOf(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		s := schemaOf(t.Elem())
		s["nullable"] = true
		return s
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = schemaOf(f.Type)
			if !strings.Contains(opts, "omitempty") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
		sort.Strings(required)
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			s["required"] = required
		}
		return s
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	}
	return map[string]any{}
}
