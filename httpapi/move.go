package httpapi

import (
	"github.com/valyala/fasthttp"
)

// moveTorrent moves a torrent's data to another folder inside the download
// root (path: relative to it, or absolute inside it). It answers once the
// engine accepted the move; the torrent then shows state "moving" and goes
// back to what it was, its path the new folder. The folder is resolved
// here but created by the move itself, beneath the root.
func (s *Server) moveTorrent(ctx *fasthttp.RequestCtx) (any, error) {
	ih, err := infoHashParam(ctx)
	if err != nil {
		return nil, err
	}
	if len(ctx.QueryArgs().PeekMulti("path")) == 0 {
		return nil, badRequest("missing path parameter")
	}
	p, err := query(ctx, "path")
	if err != nil {
		return nil, err
	}
	dir, err := s.root.resolve(p)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Client.Move(ih, dir); err != nil {
		return nil, engineError(err)
	}
	return s.changed(ih), nil
}
