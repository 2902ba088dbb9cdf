package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"time"

	"gotorrentserver/engine"
)

// The field names below are the seed API spec's, byte for byte, including
// its spellings ("Peers", "ID", "relevence"); the fields after the spec's
// are this server's additions. Byte counts are whole KiB (floor), rates
// whole KiB/s (floor), times RFC 3339 UTC or null.

// allData is the /alldata answer.
type allData struct {
	Time     string        `json:"time"`
	Sessions []sessionJSON `json:"sessions"`
	// ListenError is what is wrong with the peer port (out of file
	// descriptors, failed and being reopened), null while it accepts.
	ListenError *string `json:"listen_error"`
	// Upload is the upload side over all torrents (added beside the
	// spec's fields).
	Upload uploadJSON `json:"upload"`
}

// uploadJSON is engine.UploadStats: the automatic upload slots and the
// read cache. cache_hit_rate is hits / (hits + misses) since start.
type uploadJSON struct {
	Slots        int     `json:"slots"`
	Interested   int     `json:"interested"`
	Unchoked     int     `json:"unchoked"`
	Starved      int     `json:"starved"`
	Saturated    bool    `json:"saturated"`
	CacheBytes   int64   `json:"cache_bytes"`
	CacheHits    int64   `json:"cache_hits"`
	CacheMisses  int64   `json:"cache_misses"`
	CacheBlocks  int64   `json:"cache_block_reads"`
	CacheHitRate float64 `json:"cache_hit_rate"`
}

func uploadFromStats(st engine.UploadStats) uploadJSON {
	u := uploadJSON{Slots: st.Slots, Interested: st.Interested, Unchoked: st.Unchoked, Starved: st.Starved,
		Saturated: st.Saturated, CacheBytes: st.Cache.Bytes, CacheHits: st.Cache.Hits,
		CacheMisses: st.Cache.Misses, CacheBlocks: st.Cache.Blocks}
	if n := st.Cache.Hits + st.Cache.Misses; n > 0 {
		u.CacheHitRate = float64(st.Cache.Hits) / float64(n)
	}
	return u
}

// sessionJSON is one torrent, in /alldata and as the /torrentdata answer.
type sessionJSON struct {
	Name           string        `json:"name"`
	InfoHashBase64 string        `json:"infohash_base64"`
	BitfieldBase64 string        `json:"bitfield_base64"`
	BitfieldLength int           `json:"bitfield_length"`
	TimeStarted    *string       `json:"timestarted"`
	Wasted         int64         `json:"wasted"`
	Downloaded     int64         `json:"downloaded"`
	Uploaded       int64         `json:"uploaded"`
	Error          *string       `json:"error"`
	Trackers       []trackerJSON `json:"trackers"`
	Peers          []peerJSON    `json:"Peers"`

	InfoHash string     `json:"infohash"`
	State    string     `json:"state"`
	Progress float64    `json:"progress"`
	Size     int64      `json:"size"`
	Wanted   int64      `json:"wanted"` // bytes of the pieces wanted: size unless files are skipped
	Path     string     `json:"path"`
	DownRate int64      `json:"downrate"`
	UpRate   int64      `json:"uprate"`
	MaxDown  int64      `json:"maxdown"`
	MaxUp    int64      `json:"maxup"`
	Files    []fileJSON `json:"files"`
	Added    *string    `json:"added"`
	// Rechecks counts full hash checks of the data since the daemon started:
	// 0 after a restart means verified pieces were trusted, not rehashed.
	Rechecks int `json:"rechecks"`
	// WebSeeds are the BEP 19 servers of the url-list, shown like the
	// trackers: [] when the torrent has none.
	WebSeeds []webSeedJSON `json:"webseeds"`

	// The operator's controls (controls.go) and lifetime figures.
	TotalDownloaded int64   `json:"total_downloaded"` // bytes over the torrent's life
	TotalUploaded   int64   `json:"total_uploaded"`
	Ratio           float64 `json:"ratio"` // total_uploaded / total_downloaded (or size, if nothing was downloaded)
	SeedingSeconds  int64   `json:"seeding_seconds"`
	Label           string  `json:"label"`
	QueuePosition   int     `json:"queue_position"` // 0 first; -1 not known
	Sequential      bool    `json:"sequential"`
	RatioLimit      float64 `json:"ratio_limit"`     // -1 follows the global setting, 0 none
	SeedTimeLimit   int64   `json:"seed_time_limit"` // minutes; -1 follows the global setting, 0 none
	// LimitReached says why the ratio or seed-time limit stopped the
	// torrent; null otherwise.
	LimitReached *string `json:"limit_reached"`
}

// webSeedJSON is one web seed. status is "working", "backoff" (asked again
// at next_retry) or "dropped" (not asked again until the torrent is
// restarted or rechecked); failures counts failures in a row.
type webSeedJSON struct {
	URL        string  `json:"url"`
	Status     string  `json:"status"`
	Downloaded int64   `json:"downloaded"`
	DownRate   int64   `json:"downrate"`
	Error      *string `json:"error"`
	NextRetry  *string `json:"next_retry"`
	Failures   int     `json:"failures"`
}

type trackerJSON struct {
	URL          string  `json:"url"`
	Status       string  `json:"status"`
	Leechers     int     `json:"leechers"` // -1 until a tracker says
	Seeders      int     `json:"seeders"`  // -1 until a tracker says
	Peers        int     `json:"peers"`
	LastAnnounce *string `json:"lastannounce"`

	Error *string `json:"error"` // the last failure, null when none
}

type peerJSON struct {
	ID             string  `json:"ID"`
	Host           string  `json:"host"`
	BitfieldBase64 string  `json:"bitfield_base64"`
	BitfieldLength int     `json:"bitfield_length"`
	DownRate       int64   `json:"downrate"`
	UpRate         int64   `json:"uprate"`
	Downloaded     int64   `json:"downloaded"`
	Uploaded       int64   `json:"uploaded"`
	Connected      bool    `json:"connected"`
	Relevence      float64 `json:"relevence"`

	Client string `json:"client"`
	// The link and the peer's share (the dashboard's peer flags):
	// Encrypted is MSE with RC4, UTP uTP rather than TCP, Outgoing that
	// we dialed; Progress is the share of pieces the peer has (0..1),
	// Seed whether it has them all.
	Encrypted bool    `json:"encrypted"`
	UTP       bool    `json:"utp"`
	Outgoing  bool    `json:"outgoing"`
	Progress  float64 `json:"progress"`
	Seed      bool    `json:"seed"`
}

type fileJSON struct {
	Path     string  `json:"path"`
	Length   int64   `json:"length"`
	Progress float64 `json:"progress"`
	Priority int     `json:"priority"` // 0 skip, 1 normal, 2 high
}

// okBody answers every successful command.
type okBody struct {
	InfoHash string `json:"infohash"`
}

// kib converts bytes (or bytes/s) to whole KiB, rounding down.
func kib(n int64) int64 { return max(n, 0) >> 10 }

// timeJSON is RFC 3339 UTC, or null for the zero time.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// finite keeps NaN and infinities, which JSON cannot carry, out of answers.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// peerIDJSON shows a peer id as its own text when every byte is printable
// ASCII (Azureus-style ids such as "-qB4650-..." are), else as 40 hex
// digits; "" when the peer was never connected and its id is unknown.
func peerIDJSON(id [20]byte) string {
	if id == [20]byte{} {
		return ""
	}
	for _, c := range id {
		if c < 0x20 || c > 0x7e {
			return hex.EncodeToString(id[:])
		}
	}
	return string(id[:])
}

func sessionFromSnapshot(sn *engine.Snapshot) sessionJSON {
	out := sessionJSON{
		Name:           sn.Name,
		InfoHashBase64: base64.StdEncoding.EncodeToString(sn.InfoHash[:]),
		BitfieldBase64: base64.StdEncoding.EncodeToString(sn.Bitfield),
		BitfieldLength: sn.NumPieces,
		TimeStarted:    timeJSON(sn.Started),
		Wasted:         kib(sn.Wasted),
		Downloaded:     kib(sn.Downloaded),
		Uploaded:       kib(sn.Uploaded),
		Error:          nullable(sn.Error),
		Trackers:       make([]trackerJSON, 0, len(sn.Trackers)),
		Peers:          make([]peerJSON, 0, len(sn.Peers)),
		InfoHash:       sn.InfoHash.String(),
		State:          sn.State.String(),
		Progress:       finite(sn.Progress()),
		Size:           sn.Size,
		Wanted:         wanted(sn),
		Path:           sn.Dir,
		DownRate:       kib(sn.DownRate),
		UpRate:         kib(sn.UpRate),
		MaxDown:        kib(sn.MaxDown),
		MaxUp:          kib(sn.MaxUp),
		Files:          make([]fileJSON, 0, len(sn.Files)),
		Added:          timeJSON(sn.Added),
		Rechecks:       sn.Rechecks,
		WebSeeds:       make([]webSeedJSON, 0, len(sn.WebSeeds)),

		TotalDownloaded: sn.TotalDownloaded,
		TotalUploaded:   sn.TotalUploaded,
		Ratio:           finite(engine.Ratio(sn.TotalUploaded, sn.TotalDownloaded, sn.Size)),
		SeedingSeconds:  sn.SeedingSeconds,
		Label:           sn.Label,
		QueuePosition:   -1,
		Sequential:      sn.Sequential,
		RatioLimit:      engineToAPILimit(sn.Settings.RatioLimit),
		SeedTimeLimit:   int64(engineToAPILimit(float64(sn.Settings.SeedTimeLimit))),
		LimitReached:    nullable(sn.LimitReached),
	}
	if sn.State == engine.StateSeeding {
		// The snapshot counts up to when it was taken; an idle seed's
		// is not retaken every second.
		out.SeedingSeconds += int64(max(time.Since(sn.At), 0) / time.Second)
	}
	for _, t := range sn.Trackers {
		out.Trackers = append(out.Trackers, trackerFromStatus(t))
	}
	for _, w := range sn.WebSeeds {
		out.WebSeeds = append(out.WebSeeds, webSeedJSON{
			URL: w.URL, Status: w.Status, Downloaded: kib(w.Downloaded), DownRate: kib(w.DownRate),
			Error: nullable(w.LastError), NextRetry: timeJSON(w.NextRetry), Failures: w.Failures,
		})
	}
	for i := range sn.Peers {
		out.Peers = append(out.Peers, peerFromSnapshot(&sn.Peers[i], sn.NumPieces))
	}
	for i, f := range sn.Files {
		out.Files = append(out.Files, fileJSON{Path: f.Path, Length: f.Length, Progress: finite(f.Progress), Priority: sn.FilePriority(i)})
	}
	return out
}

func trackerFromStatus(t engine.TrackerSnapshot) trackerJSON {
	return trackerJSON{
		URL: t.URL, Status: t.Status, Leechers: t.Leechers, Seeders: t.Seeders, Peers: t.Peers,
		LastAnnounce: timeJSON(t.LastAnnounce), Error: nullable(t.LastError),
	}
}

// peerFromSnapshot: a peer whose pieces are unknown (never connected) has
// an empty bitfield of length 0.
func peerFromSnapshot(p *engine.PeerSnapshot, numPieces int) peerJSON {
	out := peerJSON{
		ID:             peerIDJSON(p.PeerID),
		Host:           p.Addr.String(),
		BitfieldBase64: base64.StdEncoding.EncodeToString(p.Bitfield),
		DownRate:       kib(p.DownRate),
		UpRate:         kib(p.UpRate),
		Downloaded:     kib(p.Downloaded),
		Uploaded:       kib(p.Uploaded),
		Connected:      p.Connected,
		Relevence:      finite(p.Relevance),
		Client:         p.Client,
		Encrypted:      p.Encrypted,
		UTP:            p.UTP,
		Outgoing:       p.Outbound,
		Seed:           p.Seed(),
	}
	if len(p.Bitfield) > 0 {
		out.BitfieldLength = numPieces
	}
	switch {
	case out.Seed:
		out.Progress = 1
	case p.NumPieces > 0:
		out.Progress = finite(float64(p.Have) / float64(p.NumPieces))
	}
	return out
}

// wanted is the bytes of the wanted pieces (the size for a magnet still
// without its metadata).
func wanted(sn *engine.Snapshot) int64 {
	if sn.Wanted > 0 || sn.Size == 0 {
		return sn.Wanted
	}
	return sn.Size
}
