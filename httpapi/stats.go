package httpapi

import (
	"net/http"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

// statsJSON is the /stats answer: the daemon at a glance. Unlike the
// torrents' fields (whole KiB), downloaded, uploaded and free_space are
// bytes; rates are KiB/s like every other rate of the API.
type statsJSON struct {
	Downloaded    int64          `json:"downloaded"` // bytes
	Uploaded      int64          `json:"uploaded"`   // bytes
	DownRate      int64          `json:"downrate"`   // KiB/s
	UpRate        int64          `json:"uprate"`     // KiB/s
	Peers         int            `json:"peers"`
	Torrents      int            `json:"torrents"`
	States        map[string]int `json:"states"`     // every state, 0 included
	FreeSpace     int64          `json:"free_space"` // bytes an unprivileged user may still write
	DownloadRoot  string         `json:"download_root"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	Version       string         `json:"version"`
	Started       string         `json:"started"` // RFC 3339 UTC
}

func (s *Server) stats(ctx *fasthttp.RequestCtx) (any, error) {
	st := s.cfg.Client.Stats()
	out := statsJSON{
		Downloaded: st.Downloaded, Uploaded: st.Uploaded, DownRate: kib(st.DownRate), UpRate: kib(st.UpRate),
		Peers: st.Peers, Torrents: st.Torrents, States: make(map[string]int, engine.NumStates),
		DownloadRoot: s.root.given, Version: s.cfg.Version,
		UptimeSeconds: int64(s.cfg.Now().Sub(s.cfg.Started) / time.Second),
		Started:       s.cfg.Started.UTC().Format(time.RFC3339),
	}
	for state, n := range st.States {
		out.States[engine.State(state).String()] = n
	}
	free, err := freeSpace(s.root.real)
	if err != nil {
		return nil, newAPIError(http.StatusInternalServerError, "free space of the download root: %v", err)
	}
	out.FreeSpace = free
	return out, nil
}

// freeSpace is what an unprivileged user may still write on dir's
// filesystem (the root-reserved blocks left out), as df shows it. One
// statfs: cheap enough for the request's goroutine.
func freeSpace(dir string) (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	return int64(fs.Bavail) * int64(fs.Bsize), nil
}
