package webseed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Config tunes a Fetcher. The zero value takes the defaults noted.
type Config struct {
	// StallTimeout fails a request when no byte (nor the headers) arrived
	// for this long; default 20 s.
	StallTimeout time.Duration
	// MaxRedirects followed per request; default 3 (net/http's 10 would
	// let a server bounce us around for long).
	MaxRedirects int
	// IdleConnsPerHost is how many connections to one server are kept
	// for reuse; default 16. Connections are not bounded per host here:
	// the caller bounds its concurrent Fetches, and a request waiting
	// for a connection would count against its own stall timeout.
	IdleConnsPerHost int
	UserAgent        string // default "GoTorrentServer/0.1"
	// HTTPClient replaces the client (tests with TLS); its redirect policy
	// and transport are then its own.
	HTTPClient *http.Client
}

const (
	defaultStall        = 20 * time.Second
	defaultMaxRedirects = 3
	defaultIdlePerHost  = 16
	defaultUserAgent    = "GoTorrentServer/0.1"
	// maxEmptyReads ends a body that keeps answering nothing without an
	// error, which io.Reader discourages but does not forbid.
	maxEmptyReads = 100
)

// Fetcher reads ranges of files from web seeds. It holds the HTTP client
// (and so the connection pool) every torrent shares. Safe for concurrent
// use; Fetch blocks.
type Fetcher struct {
	cfg Config
	hc  *http.Client
}

// NewFetcher returns a Fetcher; it opens connections only when asked.
func NewFetcher(cfg Config) *Fetcher {
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = defaultStall
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = defaultMaxRedirects
	}
	if cfg.IdleConnsPerHost <= 0 {
		cfg.IdleConnsPerHost = defaultIdlePerHost
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = defaultUserAgent
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.IdleConnsPerHost
		// Ranges of compressed answers are ranges of the compressed bytes:
		// ask for the file as it is, and refuse anything else.
		tr.DisableCompression = true
		limit := cfg.MaxRedirects
		hc = &http.Client{
			Transport: tr,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > limit {
					return fmt.Errorf("%w: more than %d redirects", ErrBadAnswer, limit)
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("%w: redirect to %q", ErrBadURL, req.URL.Scheme)
				}
				return nil
			},
		}
	}
	return &Fetcher{cfg: cfg, hc: hc}
}

// Close drops idle connections. Requests in progress end with their
// contexts.
func (f *Fetcher) Close() {
	if f.cfg.HTTPClient == nil {
		f.hc.CloseIdleConnections()
	}
}

// Fetch reads parts, in order, into dst, which must be exactly as long as
// the parts together. It returns how many bytes from dst's start are filled:
// all of them, or fewer with the error that stopped it. It never reads more
// of a body than its part asks for.
func (f *Fetcher) Fetch(ctx context.Context, parts []Part, dst []byte) (int, error) {
	var want int64
	for _, p := range parts {
		want += p.Length
	}
	if want != int64(len(dst)) {
		return 0, fmt.Errorf("webseed: %d bytes of parts for a buffer of %d", want, len(dst))
	}
	n := 0
	for _, p := range parts {
		out := dst[n : n+int(p.Length)]
		if p.URL == "" {
			clear(out)
			n += len(out)
			continue
		}
		m, err := f.part(ctx, p, out)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// part is one range request into dst.
func (f *Fetcher) part(ctx context.Context, p Part, dst []byte) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(f.cfg.StallTimeout, func() { cancel(ErrStalled) })
	defer stall.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	last := p.Offset + p.Length - 1
	req.Header.Set("Range", "bytes="+strconv.FormatInt(p.Offset, 10)+"-"+strconv.FormatInt(last, 10))
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	resp, err := f.hc.Do(req)
	if err != nil {
		return 0, failure(ctx, err)
	}
	defer resp.Body.Close()
	if err := check(resp, p); err != nil {
		return 0, err
	}
	n, empty := 0, 0
	for n < len(dst) {
		m, err := resp.Body.Read(dst[n:])
		n += m
		if m > 0 {
			stall.Reset(f.cfg.StallTimeout)
			empty = 0
		} else if empty++; empty > maxEmptyReads && err == nil {
			err = io.ErrNoProgress
		}
		switch {
		case err == nil:
		case n == len(dst):
			// The last bytes came with EOF: complete.
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return n, fmt.Errorf("%w: %d of %d bytes of %s", ErrShort, n, len(dst), clip(p.URL))
		default:
			return n, failure(ctx, err)
		}
	}
	return n, nil
}

// check accepts an answer that carries exactly the range asked for: a 206
// whose Content-Range says so, or a 200 (the whole file, the server ignoring
// Range) when the range starts the file, since its first bytes are the range.
func check(resp *http.Response, p Part) error {
	last := p.Offset + p.Length - 1
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fmt.Errorf("%w: Content-Encoding %q", ErrBadAnswer, clip(ce))
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, end, total, err := ParseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil:
			return err
		case first != p.Offset || end != last:
			return fmt.Errorf("%w: asked for bytes %d-%d, got %d-%d", ErrBadAnswer, p.Offset, last, first, end)
		case total >= 0 && total != p.FileLength:
			return fmt.Errorf("%w: file is %d bytes, the torrent says %d", ErrBadAnswer, total, p.FileLength)
		case resp.ContentLength >= 0 && resp.ContentLength != p.Length:
			return fmt.Errorf("%w: Content-Length %d for a range of %d", ErrBadAnswer, resp.ContentLength, p.Length)
		}
		return nil
	case http.StatusOK:
		switch {
		case p.Offset != 0:
			return fmt.Errorf("%w: 200 to a range at byte %d", ErrNoRanges, p.Offset)
		case resp.ContentLength >= 0 && resp.ContentLength != p.FileLength:
			return fmt.Errorf("%w: file is %d bytes, the torrent says %d", ErrBadAnswer, resp.ContentLength, p.FileLength)
		}
		return nil
	}
	return &StatusError{Code: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// retryAfter reads Retry-After as seconds or an HTTP date; 0 when absent
// or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, ok := digits(v); ok {
		return time.Duration(min(s, int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// failure names the stall when the watchdog ended the request, rather than
// the bare "context canceled" it shows up as.
func failure(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
		return ErrStalled
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("webseed: %w", context.Cause(ctx))
	}
	var se *StatusError
	if errors.As(err, &se) || errors.Is(err, ErrBadAnswer) || errors.Is(err, ErrBadURL) {
		return err
	}
	return fmt.Errorf("webseed: %w", err)
}
