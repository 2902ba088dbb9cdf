package httpapi

// GET /torrents: the torrent list in a compact form, for the dashboard and
// any client that lists many torrents. /alldata carries every field of
// every torrent (peers, files, trackers): with 10,000 torrents megabytes of
// objects that a browser takes half a second to parse. This answer names
// each field once and gives every torrent as an array of values in that
// order: about a quarter of the bytes, and arrays parse faster than
// objects. Built from the same snapshots, cached and built one at a time
// like /alldata (allDataTTL), and paced like every answer.

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"gotorrentserver/engine"
)

// listFields names the values of each row of /torrents, in order. Units
// are /alldata's (rates KiB/s, size and totals bytes); added is Unix
// seconds (0: unknown) and error "" when there is none, so that every
// value is a number or a string.
var listFields = []string{"infohash", "name", "state", "progress", "size", "wanted", "downrate", "uprate",
	"label", "ratio", "added", "queue_position", "error", "total_uploaded", "total_downloaded"}

// listJSON is the /torrents answer.
type listJSON struct {
	Time   string   `json:"time"`
	Fields []string `json:"fields"`
	// Rows are the torrents, oldest first (as /alldata), each the values
	// of Fields in order, each on a line of its own (encodeList).
	Rows [][]any `json:"rows"`
}

func (s *Server) torrentList(ctx *fasthttp.RequestCtx) (any, error) {
	return cachedBuild(&s.listMu, &s.listCache, func() ([]byte, error) { return encodeList(s.buildList()) })
}

// encodeList writes l as JSON with each row on a line of its own (and no
// other newline: strings escape theirs), so that a client can parse the
// rows as they arrive, line by line, instead of the whole body at once.
func encodeList(l listJSON) ([]byte, error) {
	head, err := json.Marshal(struct {
		Time   string   `json:"time"`
		Fields []string `json:"fields"`
	}{l.Time, l.Fields})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 64+len(head)+160*len(l.Rows))
	out = append(out, head[:len(head)-1]...)
	out = append(out, `,"rows":[`...)
	for i, r := range l.Rows {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '\n')
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	out = append(out, "\n]}"...)
	return out, nil
}

func (s *Server) buildList() listJSON {
	snaps := s.snapshotsByAdded()
	pos := s.queuePositions()
	out := listJSON{Time: s.cfg.Now().UTC().Format(time.RFC3339), Fields: listFields, Rows: make([][]any, 0, len(snaps))}
	for _, sn := range snaps {
		qp, ok := pos[sn.InfoHash]
		if !ok {
			qp = -1
		}
		var added int64
		if !sn.Added.IsZero() {
			added = sn.Added.Unix()
		}
		out.Rows = append(out.Rows, []any{
			sn.InfoHash.String(), sn.Name, sn.State.String(), finite(sn.Progress()), sn.Size, wanted(sn),
			kib(sn.DownRate), kib(sn.UpRate), sn.Label,
			finite(engine.Ratio(sn.TotalUploaded, sn.TotalDownloaded, sn.Size)), added, qp, sn.Error,
			sn.TotalUploaded, sn.TotalDownloaded,
		})
	}
	return out
}
