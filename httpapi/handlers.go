package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// handler serves one endpoint: it returns the value to answer as JSON with
// 200, or an error (an *apiError carries its status). Handlers run on the
// connection's goroutine and must not keep ctx or its bytes after
// returning.
type handler func(s *Server, ctx *fasthttp.RequestCtx) (any, error)

type route struct {
	method string
	h      handler
}

// postBeside are POST handlers on paths that also answer GET (routes):
// /settings reads with GET and changes with POST.
var postBeside = map[string]handler{
	"/settings": (*Server).postSettings,
}

// allow is a route's Allow header.
func allow(path string, rt route) string {
	if postBeside[path] != nil {
		return rt.method + ", " + http.MethodPost
	}
	return rt.method
}

// routes is the API, path by path, as in the seed API spec.
var routes = map[string]route{
	"/alldata":        {http.MethodGet, (*Server).allData},
	"/torrentdata":    {http.MethodGet, (*Server).torrentData},
	"/addtorrentfile": {http.MethodPost, (*Server).addTorrentFile},
	"/addmagnet":      {http.MethodPost, (*Server).addMagnet},
	"/stoptorrent":    {http.MethodGet, (*Server).stopTorrent},
	"/starttorrent":   {http.MethodGet, (*Server).startTorrent},
	"/removetorrent":  {http.MethodGet, (*Server).removeTorrent},
	"/setdownrate":    {http.MethodGet, (*Server).setDownRate},
	"/setuprate":      {http.MethodGet, (*Server).setUpRate},
	// Added beside the spec's calls.
	"/recheck":          {http.MethodGet, (*Server).recheck},
	"/setlabel":         {http.MethodGet, (*Server).setLabel},
	"/setsequential":    {http.MethodGet, (*Server).setSequential},
	"/setratiolimit":    {http.MethodGet, (*Server).setRatioLimit},
	"/setseedtimelimit": {http.MethodGet, (*Server).setSeedTimeLimit},
	"/reannounce":       {http.MethodGet, (*Server).reannounce},
	"/addpeer":          {http.MethodGet, (*Server).addPeer},
	"/addtracker":       {http.MethodGet, (*Server).addTracker},
	"/removetracker":    {http.MethodGet, (*Server).removeTracker},
	"/setqueueposition": {http.MethodGet, (*Server).setQueuePosition},
	"/settings":         {http.MethodGet, (*Server).getSettings},
	"/openapi.json":     {http.MethodGet, (*Server).openAPI},
	"/movetorrent":      {http.MethodGet, (*Server).moveTorrent},
	"/setfilepriority":  {http.MethodGet, (*Server).setFilePriority},
	"/metrics":          {http.MethodGet, (*Server).metricsPage},
	"/stats":            {http.MethodGet, (*Server).stats},
	"/logs":             {http.MethodGet, (*Server).logs},
	"/torrents":         {http.MethodGet, (*Server).torrentList},
}

// serve is the fasthttp handler: authentication, routing, and a recover
// so that a bug answers a JSON 500 instead of killing the process.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	// Deferred first, so it runs last and counts the status sent.
	defer func() { s.metrics.count(ctx.Path(), ctx.Response.StatusCode()) }()
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logf("httpapi: panic serving %s: %v\n%s", ctx.Path(), r, debug.Stack())
			ctx.Response.Reset()
			commonHeaders(ctx)
			writeError(ctx, http.StatusInternalServerError, "internal error")
		}
	}()
	commonHeaders(ctx)
	// The dashboard's files and sign-in come before authentication: a
	// browser has no session yet when it loads them. Not paced, like
	// refusals: small answers to anyone.
	if isUIPath(ctx.Path()) {
		s.serveUI(ctx)
		return
	}
	if s.servePublic(ctx) {
		return
	}
	if r := s.authenticate(&ctx.Request.Header); r != authOK {
		// Not paced: charging refusals to the budget would let anyone
		// without the token make the owner's requests wait or fail, and a
		// refusal is a small answer that closes its connection.
		refuseAuth(ctx, r)
		return
	}
	proveConn(ctx)
	if string(ctx.Path()) == eventsPath {
		s.events(ctx) // long-lived: not paced (events.go)
		return
	}
	defer s.pace(ctx)
	rt, ok := routes[string(ctx.Path())]
	if !ok {
		writeError(ctx, http.StatusNotFound, "unknown path")
		return
	}
	h := rt.h
	switch m := string(ctx.Method()); {
	case m == http.MethodPost && postBeside[string(ctx.Path())] != nil:
		h = postBeside[string(ctx.Path())]
	case m != rt.method:
		a := allow(string(ctx.Path()), rt)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, a)
		writeError(ctx, http.StatusMethodNotAllowed, "use "+a)
		return
	}
	v, err := h(s, ctx)
	if err != nil {
		writeAPIError(ctx, err)
		return
	}
	switch raw := v.(type) {
	case rawJSON:
		ctx.Response.Header.SetContentType("application/json")
		ctx.Response.SetBodyRaw(raw)
		return
	case rawBody:
		ctx.Response.Header.SetContentType(raw.contentType)
		ctx.Response.SetBodyRaw(raw.body)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.cfg.Logf("httpapi: encoding %s: %v", ctx.Path(), err)
		writeError(ctx, http.StatusInternalServerError, "internal error")
		return
	}
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBodyRaw(b)
}

// readError answers requests fasthttp could not read, in the API's JSON.
func (s *Server) readError(ctx *fasthttp.RequestCtx, err error) {
	defer func() { s.metrics.count(ctx.Path(), ctx.Response.StatusCode()) }()
	commonHeaders(ctx)
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) && isLoginURI(ctx.Request.Header.RequestURI()):
		markLinger(ctx, unauthLinger) // from anyone: drained as little as a 401
		writeAPIError(ctx, tooLarge(maxLoginBody))
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.markLingerUpload(ctx)
		writeAPIError(ctx, tooLarge(s.cfg.MaxBody))
	case errors.As(err, &small):
		// Most of the request is still unread: closing on it would
		// reset the connection and could destroy the answer (seen once
		// under load in TestMethodsAndPaths).
		markLinger(ctx, unauthLinger)
		writeError(ctx, http.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case isTimeout(err):
		writeError(ctx, http.StatusRequestTimeout, "request timeout")
	default:
		markLinger(ctx, unauthLinger)
		writeError(ctx, http.StatusBadRequest, "malformed request")
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// changed reports a successful command to OnChange and builds its answer.
func (s *Server) changed(ih metainfo.Hash) okBody {
	s.allCache.Store(nil) // the next /alldata shows the change
	s.listCache.Store(nil)
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(ih)
	}
	return okBody{InfoHash: ih.String()}
}

func infoHashParam(ctx *fasthttp.RequestCtx) (metainfo.Hash, error) {
	v, err := query(ctx, "infohash")
	if err != nil {
		return metainfo.Hash{}, err
	}
	return parseInfoHash(v)
}

// allDataTTL is how long one /alldata body is reused. Snapshots change at
// most once a second, and with 10,000 torrents a body is megabytes of JSON:
// building it per request would let a hammering client take the CPU from
// transfers. Mutations through the API invalidate it at once.
const allDataTTL = time.Second

// rawJSON is an already encoded answer.
type rawJSON []byte

type cachedBody struct {
	at   time.Time
	body rawJSON
}

func (s *Server) allData(ctx *fasthttp.RequestCtx) (any, error) {
	return cachedBuild(&s.allMu, &s.allCache, func() ([]byte, error) { return json.Marshal(s.buildAllData()) })
}

// cachedBuild answers the body in cache while it is younger than
// allDataTTL, else builds a new one; one builder at a time (mu), the
// others wait and take its result.
func cachedBuild(mu *sync.Mutex, cache *atomic.Pointer[cachedBody], build func() ([]byte, error)) (any, error) {
	if c := cache.Load(); c != nil && time.Since(c.at) < allDataTTL {
		return c.body, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if c := cache.Load(); c != nil && time.Since(c.at) < allDataTTL {
		return c.body, nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	cache.Store(&cachedBody{at: time.Now(), body: b})
	return rawJSON(b), nil
}

// snapshotsByAdded is every torrent's latest snapshot, oldest added first,
// so lists are stable between polls.
func (s *Server) snapshotsByAdded() []*engine.Snapshot {
	sessions := s.cfg.Client.Sessions()
	snaps := make([]*engine.Snapshot, 0, len(sessions))
	for _, ss := range sessions {
		if sn := ss.Snapshot(); sn != nil {
			snaps = append(snaps, sn)
		}
	}
	slices.SortFunc(snaps, func(a, b *engine.Snapshot) int {
		if c := a.Added.Compare(b.Added); c != 0 {
			return c
		}
		return bytes.Compare(a.InfoHash[:], b.InfoHash[:])
	})
	return snaps
}

// queuePositions maps each torrent to its place in the queue.
func (s *Server) queuePositions() map[metainfo.Hash]int {
	order := s.cfg.Client.QueueOrder()
	pos := make(map[metainfo.Hash]int, len(order))
	for i, ih := range order {
		pos[ih] = i
	}
	return pos
}

func (s *Server) buildAllData() allData {
	snaps := s.snapshotsByAdded()
	out := allData{
		Time:     s.cfg.Now().UTC().Format(time.RFC3339),
		Sessions: make([]sessionJSON, 0, len(snaps)),
	}
	if msg := s.cfg.Client.ListenError(); msg != "" {
		out.ListenError = &msg
	}
	out.Upload = uploadFromStats(s.cfg.Client.UploadStats())
	pos := s.queuePositions()
	for _, sn := range snaps {
		js := sessionFromSnapshot(sn)
		if p, ok := pos[sn.InfoHash]; ok {
			js.QueuePosition = p
		}
		out.Sessions = append(out.Sessions, js)
	}
	return out
}

func (s *Server) torrentData(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	ss := s.cfg.Client.Session(ih)
	if ss == nil {
		return nil, engineError(engine.ErrNotFound)
	}
	sn := ss.Snapshot()
	if sn == nil {
		return nil, engineError(engine.ErrNotFound)
	}
	js := sessionFromSnapshot(sn)
	js.QueuePosition = s.cfg.Client.QueuePosition(ih)
	return js, nil
}

// addTorrentFile checks every parameter before touching anything, then
// parses the body, then creates the folder, then adds.
func (s *Server) addTorrentFile(ctx *fasthttp.RequestCtx) (any, error) {
	var p [7]string
	for i, name := range [...]string{"path", "start", "maxdown", "maxup", "label", "sequential", "priorities"} {
		v, err := query(ctx, name)
		if err != nil {
			return nil, err
		}
		p[i] = v
	}
	start, err := parseBool("start", p[1], true)
	if err != nil {
		return nil, err
	}
	maxDown, err := parseOptionalRate("maxdown", p[2])
	if err != nil {
		return nil, err
	}
	maxUp, err := parseOptionalRate("maxup", p[3])
	if err != nil {
		return nil, err
	}
	label, err := parseLabel(p[4])
	if err != nil {
		return nil, err
	}
	sequential, err := parseBool("sequential", p[5], false)
	if err != nil {
		return nil, err
	}
	// The parsed metainfo keeps slices of its input (InfoBytes), and
	// fasthttp reuses the body buffer after we return: parse a copy.
	body := bytes.Clone(ctx.PostBody())
	if len(body) == 0 {
		return nil, badRequest("empty body: send the .torrent file's bytes")
	}
	mi, err := metainfo.Parse(body)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	prio, err := parsePriorities(p[6], mi)
	if err != nil {
		return nil, err
	}
	// Checked early only to leave no folder behind; Add decides for sure.
	if s.cfg.Client.Session(mi.InfoHash) != nil {
		return nil, engineError(engine.ErrExists)
	}
	dir, err := s.root.ensure(s.addDir(p[0]))
	if err != nil {
		return nil, err
	}
	_, err = s.cfg.Client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: dir, Stopped: !start, MaxDown: maxDown,
		MaxUp: maxUp, Label: label, Sequential: sequential, Priorities: prio}})
	if err != nil {
		return nil, engineError(err)
	}
	return s.changed(mi.InfoHash), nil
}

// addMagnet validates the request fully, then adds the magnet: the session
// starts in state "metadata" under the link's dn and fetches the info dict
// from peers.
func (s *Server) addMagnet(ctx *fasthttp.RequestCtx) (any, error) {
	req, err := parseMagnetBody(ctx.PostBody())
	if err != nil {
		return nil, err
	}
	target := s.addDir(req.targetDir)
	if _, err := s.root.resolve(target); err != nil {
		return nil, err
	}
	if s.cfg.Client.Session(req.magnet.InfoHash) != nil {
		return nil, engineError(engine.ErrExists)
	}
	dir, err := s.root.ensure(target)
	if err != nil {
		return nil, err
	}
	_, err = s.cfg.Client.AddMagnet(req.magnet, engine.AddOptions{Settings: engine.Settings{Dir: dir, MaxDown: req.maxDown,
		MaxUp: req.maxUp, Stopped: !req.start, Label: req.label, Sequential: req.sequential}})
	if err != nil {
		return nil, engineError(err)
	}
	return s.changed(req.magnet.InfoHash), nil
}

func (s *Server) stopTorrent(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Client.Stop(ih); err != nil {
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}

func (s *Server) startTorrent(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Client.Start(ih); err != nil {
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}

// recheck hashes a torrent's data again: the way out of a data error, or a
// check after moving files in by hand.
func (s *Server) recheck(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Client.Recheck(ih); err != nil {
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}

func (s *Server) removeTorrent(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	v, err := query(ctx, "delete")
	if err != nil {
		return nil, err
	}
	del, err := parseBool("delete", v, false)
	if err != nil {
		return nil, err
	}
	err = s.cfg.Client.Remove(ih, del)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, engineError(err)
	}
	// Any other error comes from deleting files: the torrent is gone all
	// the same, so the change must still be persisted.
	ok := s.changed(ih)
	if err != nil {
		return nil, newAPIError(http.StatusInternalServerError, "torrent removed, but deleting its data failed: %v", err)
	}
	return ok, nil
}

func (s *Server) setDownRate(ctx *fasthttp.RequestCtx) (any, error) { return s.setRate(ctx, true) }

func (s *Server) setUpRate(ctx *fasthttp.RequestCtx) (any, error) { return s.setRate(ctx, false) }

func (s *Server) setRate(ctx *fasthttp.RequestCtx, down bool) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	v, err := query(ctx, "rate")
	if err != nil {
		return nil, err
	}
	rate, err := parseRate("rate", v)
	if err != nil {
		return nil, err
	}
	d, u := rate, int64(-1)
	if !down {
		d, u = -1, rate
	}
	if err := s.cfg.Client.SetRates(ih, d, u); err != nil {
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}
