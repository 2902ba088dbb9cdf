package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gotorrentserver/metainfo"
)

// httpAnnounce performs one HTTP(S) announce. It blocks; callers run it off
// the session loop.
func httpAnnounce(ctx context.Context, hc *http.Client, cfg *Config, rawURL string, req AnnounceRequest) (AnnounceResponse, error) {
	full, err := buildHTTPURL(rawURL, req)
	if err != nil {
		return AnnounceResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.HTTPTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return AnnounceResponse{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	hreq.Header.Set("User-Agent", cfg.UserAgent)
	resp, err := hc.Do(hreq)
	if err != nil {
		return AnnounceResponse{}, httpError(ctx, err)
	}
	defer resp.Body.Close()
	// Read one byte past the bound so an over-long body is detected rather
	// than silently truncated into a bencode error.
	body, err := io.ReadAll(io.LimitReader(resp.Body, cfg.MaxResponseSize+1))
	if err != nil {
		return AnnounceResponse{}, httpError(ctx, err)
	}
	if int64(len(body)) > cfg.MaxResponseSize {
		return AnnounceResponse{}, fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, cfg.MaxResponseSize)
	}
	out, perr := parseHTTPResponse(body, cfg.MaxResponseSize)
	if resp.StatusCode != http.StatusOK {
		// Some trackers pair an error status with a bencoded reason; that
		// reason is more useful to the user than the status line.
		if _, ok := errors.AsType[*TrackerError](perr); ok {
			return AnnounceResponse{}, perr
		}
		return AnnounceResponse{}, fmt.Errorf("%w: HTTP status %d", ErrBadResponse, resp.StatusCode)
	}
	return out, perr
}

// httpError strips the request URL from transport errors: it carries the
// passkey and binary info_hash, neither of which belongs in logs or the API.
func httpError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: http: %v", ErrTimeout, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("tracker: http: %w", ctxErr)
	}
	return fmt.Errorf("tracker: http: %v", err)
}

// buildHTTPURL appends the announce parameters to rawURL, keeping whatever
// query it already has (private trackers put passkeys there) byte for byte.
func buildHTTPURL(rawURL string, req AnnounceRequest) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%w: no host", ErrBadURL)
	}
	u.Fragment, u.RawFragment, u.ForceQuery = "", "", false
	var b strings.Builder
	b.WriteString(u.String())
	if u.RawQuery != "" {
		b.WriteByte('&')
	} else {
		b.WriteByte('?')
	}
	b.WriteString("info_hash=")
	b.WriteString(escapeBinary(req.InfoHash[:]))
	b.WriteString("&peer_id=")
	b.WriteString(escapeBinary(req.PeerID[:]))
	b.WriteString("&port=" + strconv.Itoa(int(req.Port)))
	b.WriteString("&uploaded=" + strconv.FormatInt(max(req.Uploaded, 0), 10))
	b.WriteString("&downloaded=" + strconv.FormatInt(max(req.Downloaded, 0), 10))
	b.WriteString("&left=" + strconv.FormatInt(max(req.Left, 0), 10))
	if req.Compact {
		b.WriteString("&compact=1")
	} else {
		b.WriteString("&compact=0")
	}
	if req.NumWant > 0 {
		b.WriteString("&numwant=" + strconv.Itoa(req.NumWant))
	}
	b.WriteString(fmt.Sprintf("&key=%08x", req.Key))
	if ev := req.Event.String(); ev != "" {
		b.WriteString("&event=" + ev)
	}
	if req.IP.IsValid() {
		b.WriteString("&ip=" + url.QueryEscape(req.IP.String()))
	}
	if req.TrackerID != "" {
		b.WriteString("&trackerid=" + url.QueryEscape(req.TrackerID))
	}
	return b.String(), nil
}

// escapeBinary percent-encodes every byte outside RFC 3986's unreserved set.
// url.QueryEscape is not usable: it turns spaces into '+', which some
// trackers would decode as a literal plus and so see a different hash.
func escapeBinary(p []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) * 3)
	for _, c := range p {
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// parseHTTPResponse decodes a tracker's bencoded reply. Top-level fields of
// the wrong type are errors (the tracker is broken and its other fields are
// not to be trusted); individual malformed dictionary-form peers are only
// skipped, since one bad entry says little about the rest.
func parseHTTPResponse(body []byte, maxSize int64) (AnnounceResponse, error) {
	out := AnnounceResponse{Seeders: -1, Leechers: -1}
	v, err := metainfo.DecodeLimits(body, metainfo.Limits{MaxSize: int(min(maxSize, math.MaxInt32)), MaxDepth: httpBencodeMaxDepth})
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return out, fmt.Errorf("%w: reply is not a dictionary", ErrBadResponse)
	}
	if reason, ok, err := dictBytes(d, "failure reason"); err != nil {
		return out, err
	} else if ok {
		return out, &TrackerError{Reason: cleanText(reason)}
	}
	if w, ok, err := dictBytes(d, "warning message"); err != nil {
		return out, err
	} else if ok {
		out.Warning = cleanText(w)
	}
	if id, ok, err := dictBytes(d, "tracker id"); err != nil {
		return out, err
	} else if ok {
		out.TrackerID = cleanText(id)
	}
	if out.Interval, err = dictSeconds(d, "interval"); err != nil {
		return out, err
	}
	if out.MinInterval, err = dictSeconds(d, "min interval"); err != nil {
		return out, err
	}
	if out.Seeders, err = dictCount(d, "complete"); err != nil {
		return out, err
	}
	if out.Leechers, err = dictCount(d, "incomplete"); err != nil {
		return out, err
	}
	var set peerSet
	switch p := d["peers"].(type) {
	case nil:
	case []byte:
		peers, err := parseCompactPeers(p, false)
		if err != nil {
			return out, err
		}
		set.add(peers...)
	case []any:
		out.PeerIDs = parseDictPeers(p, &set)
	default:
		return out, fmt.Errorf("%w: %q has type %T", ErrBadResponse, "peers", p)
	}
	switch p := d["peers6"].(type) {
	case nil:
	case []byte:
		peers, err := parseCompactPeers(p, true)
		if err != nil {
			return out, err
		}
		set.add(peers...)
	default:
		return out, fmt.Errorf("%w: %q has type %T", ErrBadResponse, "peers6", p)
	}
	out.Peers = set.list
	return out, nil
}

// parseDictPeers handles the original BEP 3 list of {ip, port, peer id}.
// Host names in "ip" are skipped, not resolved: resolving would put DNS
// lookups chosen by the tracker on our announce path for the sake of a form
// no current tracker uses with names.
func parseDictPeers(list []any, set *peerSet) map[netip.AddrPort][20]byte {
	var ids map[netip.AddrPort][20]byte
	for _, e := range list {
		if len(set.list) >= maxPeersPerReply {
			break
		}
		pd, ok := e.(map[string]any)
		if !ok {
			continue
		}
		ipb, ok := pd["ip"].([]byte)
		if !ok {
			continue
		}
		port, ok := pd["port"].(int64)
		if !ok || port <= 0 || port > math.MaxUint16 {
			continue
		}
		addr, err := netip.ParseAddr(string(ipb))
		if err != nil {
			continue
		}
		ap, ok := usablePeer(addr, uint16(port))
		if !ok {
			continue
		}
		set.add(ap)
		if id, ok := pd["peer id"].([]byte); ok && len(id) == 20 {
			if ids == nil {
				ids = make(map[netip.AddrPort][20]byte)
			}
			ids[ap] = [20]byte(id)
		}
	}
	return ids
}

func dictBytes(d map[string]any, key string) ([]byte, bool, error) {
	switch v := d[key].(type) {
	case nil:
		return nil, false, nil
	case []byte:
		return v, true, nil
	default:
		return nil, false, fmt.Errorf("%w: %q has type %T", ErrBadResponse, key, v)
	}
}

func dictSeconds(d map[string]any, key string) (time.Duration, error) {
	switch v := d[key].(type) {
	case nil:
		return 0, nil
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("%w: negative %q", ErrBadResponse, key)
		}
		return time.Duration(min(v, maxIntervalSeconds)) * time.Second, nil
	default:
		return 0, fmt.Errorf("%w: %q has type %T", ErrBadResponse, key, v)
	}
}

// dictCount reads a swarm count; absent or negative means unknown (-1).
func dictCount(d map[string]any, key string) (int, error) {
	switch v := d[key].(type) {
	case nil:
		return -1, nil
	case int64:
		if v < 0 {
			return -1, nil
		}
		return int(min(v, math.MaxInt32)), nil
	default:
		return -1, fmt.Errorf("%w: %q has type %T", ErrBadResponse, key, v)
	}
}
