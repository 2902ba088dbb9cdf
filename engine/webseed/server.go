// Package webseed fetches torrent data from BEP 19 web seeds (the url-list
// HTTP and HTTPS servers of a torrent) and keeps each server's health.
//
// Concurrency: a Server is immutable and a Fetcher is safe for concurrent
// use, but Fetch blocks on the network, so the engine runs it only as a job
// on one of its lanes, never on a session thread. Health is plain data owned
// by one session; time is passed in, so its policy is tested without a
// clock or a socket.
package webseed

import (
	"fmt"
	"net/url"
	"strings"

	"gotorrentserver/metainfo"
)

// Server is one url-list entry, parsed once. Immutable.
type Server struct {
	raw string
	u   url.URL
}

// ParseServer checks a url-list entry: an absolute http or https URL with a
// host. Anything else (ftp, a relative path, a URL with credentials in it,
// which would go out with every request) is refused.
func ParseServer(raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: %q: scheme must be http or https", ErrBadURL, clip(raw))
	case u.Host == "":
		return nil, fmt.Errorf("%w: %q: no host", ErrBadURL, clip(raw))
	case u.User != nil:
		return nil, fmt.Errorf("%w: %q: credentials in the URL", ErrBadURL, clip(raw))
	}
	u.Fragment, u.RawFragment = "", ""
	return &Server{raw: raw, u: *u}, nil
}

// URL is the entry as the torrent gave it.
func (s *Server) URL() string { return s.raw }

// FileURL is where the server keeps file fi of mi (BEP 19). For a
// single-file torrent the URL names the file itself, unless it ends in "/":
// then it is a folder holding the file under the torrent's name. For a
// multi-file torrent it is the folder holding the torrent's root folder.
// Each path element is escaped on its own, so a name holding "?", "#" or
// "%" stays one element, and a query in the URL (a signed link) is kept.
func (s *Server) FileURL(mi *metainfo.MetaInfo, fi int) string {
	var elems []string
	switch {
	case !mi.SingleFile:
		elems = append(append(elems, mi.Name), mi.Files[fi].Path...)
	case s.u.Path == "" || strings.HasSuffix(s.u.Path, "/"):
		elems = []string{mi.Name}
	}
	if len(elems) == 0 {
		return s.u.String()
	}
	var b strings.Builder
	b.WriteString(s.u.EscapedPath())
	for _, e := range elems {
		if !strings.HasSuffix(b.String(), "/") {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(e))
	}
	u := s.u
	u.RawPath = b.String()
	u.Path, _ = url.PathUnescape(u.RawPath)
	return u.String()
}

// Part is one HTTP range request: Length bytes at Offset of a file of
// FileLength bytes at URL. URL is "" for a BEP 47 pad file, whose bytes are
// zeros and never fetched.
type Part struct {
	URL        string
	Offset     int64
	Length     int64
	FileLength int64
}

// Plan maps length bytes at torrent offset off onto the files that hold
// them: one Part per file touched, in order.
func (s *Server) Plan(mi *metainfo.MetaInfo, off, length int64) []Part {
	spans := mi.Spans(off, length)
	out := make([]Part, 0, len(spans))
	for _, sp := range spans {
		p := Part{Offset: sp.Offset, Length: sp.Length, FileLength: mi.Files[sp.File].Length}
		if !sp.Pad {
			p.URL = s.FileURL(mi, sp.File)
		}
		out = append(out, p)
	}
	return out
}
