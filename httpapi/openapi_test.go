package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gotorrentserver/metainfo"
)

// The document lists exactly the routes the server has, and every
// operation, called as documented, answers what its schema says.
func TestOpenAPIWalksEveryRoute(t *testing.T) {
	have := map[string]bool{}
	for path, rt := range routes {
		have[strings.ToLower(rt.method)+" "+path] = true
	}
	for path := range postBeside {
		have["post "+path] = true
	}
	have["get "+eventsPath] = true       // routed before the table: not paced
	for path, rt := range publicRoutes { // before authentication
		have[strings.ToLower(rt.method)+" "+path] = true
	}
	// The dashboard's files (/ and /ui/...) are left out: pages for a
	// browser, not API calls.
	documented := map[string]bool{}
	for path, ops := range apiDoc {
		for method := range ops {
			documented[method+" "+path] = true
			if !have[method+" "+path] {
				t.Errorf("documented but not served: %s %s", method, path)
			}
		}
	}
	for k := range have {
		if !documented[k] {
			t.Errorf("served but not documented: %s", k)
		}
	}

	// The validator itself refuses what differs.
	var okSchema map[string]any // as the served document has it: JSON
	b, _ := json.Marshal(schemaOf(reflect.TypeOf(okBody{})))
	json.Unmarshal(b, &okSchema)
	for _, bad := range []any{map[string]any{"infohash": 1.0}, map[string]any{}, map[string]any{"infohash": "a", "x": 1.0}, []any{}} {
		if validate(bad, okSchema, "$") == nil {
			t.Fatalf("validator accepted %v", bad)
		}
	}

	e := newEnv(t, nil)
	doc := e.must(e.do("GET", "/openapi.json", nil), http.StatusOK).json
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	folder := makeData(t, e.root, "walk", 11, 40<<10)
	ih := e.add(makeTorrent(t, folder), url.Values{"path": {""}})
	e.waitTorrent(ih, "seeding", func(m map[string]any) bool { return state(m) == "seeding" })
	newRaw, _ := newTorrent(t, "walk2", 12)
	samples := map[string]string{
		"infohash": ih.String(), "path": "", "start": "false", "maxdown": "0", "maxup": "0", "label": "x",
		"sequential": "true", "delete": "false", "rate": "100", "value": "true", "ratio": "2", "minutes": "10",
		"host": "127.0.0.1:6999", "url": "udp://127.0.0.1:9/announce", "position": "0",
		"file": "0", "priority": "2", "priorities": "1,2", "last_event_id": "0", "after": "0",
	}
	bodies := map[string][]byte{
		"post /addtorrentfile": newRaw,
		"post /addmagnet":      []byte(`{"url":"magnet:?xt=urn:btih:` + metainfo.Hash{3}.String() + `","targetdir":""}`),
		"post /settings":       []byte(`{"maxup":10}`),
		"post /login":          []byte(`{"token":""}`),
	}
	var order []string
	for path, item := range paths {
		for method := range item.(map[string]any) {
			order = append(order, method+" "+path)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		// Remove last: the other calls need the torrent.
		ri, rj := strings.HasSuffix(order[i], "/removetorrent"), strings.HasSuffix(order[j], "/removetorrent")
		if ri != rj {
			return rj
		}
		return order[i] < order[j]
	})
	for _, k := range order {
		method, path, _ := strings.Cut(k, " ")
		o := paths[path].(map[string]any)[method].(map[string]any)
		q := url.Values{}
		params, _ := o["parameters"].([]any)
		for _, p := range params {
			name := p.(map[string]any)["name"].(string)
			v, ok := samples[name]
			if !ok {
				t.Fatalf("%s: no sample value for parameter %s", k, name)
			}
			q.Set(name, v)
		}
		target := path
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		ok := o["responses"].(map[string]any)["200"].(map[string]any)
		content, _ := ok["content"].(map[string]any)
		if _, isJSON := content["application/json"]; !isJSON && len(content) == 1 {
			for media := range content {
				checkRaw(t, e, target, media)
			}
			continue
		}
		r := e.do(strings.ToUpper(method), target, bodies[k])
		if r.status != http.StatusOK {
			t.Errorf("%s: %d %s", k, r.status, r.raw)
			continue
		}
		schema, _ := content["application/json"].(map[string]any)["schema"].(map[string]any)
		if schema == nil {
			continue
		}
		var v any
		if err := json.Unmarshal(r.raw, &v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if err := validate(v, schema, "$"); err != nil {
			t.Errorf("%s: answer does not match the document: %v\n%s", k, err, r.raw)
		}
		// Every documented failure answers the error schema: try a 404.
		if hasParam(params, "infohash") {
			q.Set("infohash", metainfo.Hash{0xee}.String())
			r := e.do(strings.ToUpper(method), path+"?"+q.Encode(), bodies[k])
			errSchema := o["responses"].(map[string]any)["404"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
			var v any
			json.Unmarshal(r.raw, &v)
			if r.status != http.StatusNotFound || validate(v, errSchema, "$") != nil {
				t.Errorf("%s with an unknown torrent: %d %s", k, r.status, r.raw)
			}
		}
	}
}

// checkRaw calls a path whose answer is not JSON and checks its media type
// and first line (an event stream's retry line; Prometheus' # HELP).
func checkRaw(t *testing.T, e *env, target, media string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+target, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	first := map[string]string{"text/event-stream": "retry:", "text/plain": "# HELP"}[media]
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), media) || err != nil || first == "" || !strings.HasPrefix(line, first) {
		t.Errorf("%s: %d %q, first line %q (%v)", target, res.StatusCode, res.Header.Get("Content-Type"), line, err)
	}
}

func hasParam(params []any, name string) bool {
	for _, p := range params {
		if p.(map[string]any)["name"] == name {
			return true
		}
	}
	return false
}

// validate checks v against the subset of JSON schema the document uses.
func validate(v any, s map[string]any, at string) error {
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return fmt.Errorf("%s: null where the document says %v", at, s["type"])
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", at, v)
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: required field %s missing", at, r)
			}
		}
		for k, x := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				extra, _ := s["additionalProperties"].(map[string]any)
				if extra == nil {
					return fmt.Errorf("%s: field %s not in the document", at, k)
				}
				ps = extra
			}
			if err := validate(x, ps, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", at, v)
		}
		for i, x := range a {
			if err := validate(x, s["items"].(map[string]any), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %T, want a string", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", at, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: %T, want a number", at, v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v, want an integer", at, v)
		}
	}
	return nil
}
