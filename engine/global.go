package engine

import (
	"errors"
	"fmt"

	"gotorrentserver/engine/resume"
	"gotorrentserver/metainfo"
)

// Global is the daemon's settings over all torrents (see resume.Global).
type Global = resume.Global

// GlobalPersister is what a Persister also implements to keep the global
// settings and the queue order; both are written synchronously, so an API
// call that changed them answers only once they are on disk.
type GlobalPersister interface {
	SaveGlobal(g Global) error
	SaveQueue(order []metainfo.Hash) error
}

// ErrBadSetting: a global setting out of its range.
var ErrBadSetting = errors.New("engine: bad setting")

// checkGlobal refuses values the engine cannot apply.
func checkGlobal(g Global) error {
	switch {
	case g.MaxDown < 0 || g.MaxUp < 0:
		return fmt.Errorf("%w: rates must not be negative", ErrBadSetting)
	case g.MaxActiveDownloads < 0 || g.MaxActiveSeeds < 0:
		return fmt.Errorf("%w: active torrent limits must not be negative", ErrBadSetting)
	case g.RatioLimit < 0 || g.SeedTimeLimit < 0:
		return fmt.Errorf("%w: ratio and seed-time limits must not be negative (0 = none)", ErrBadSetting)
	case g.LimitAction != resume.LimitStop && g.LimitAction != resume.LimitRemove:
		return fmt.Errorf("%w: limit action must be %q or %q", ErrBadSetting, resume.LimitStop, resume.LimitRemove)
	}
	return nil
}

// Global returns the current global settings. Safe for concurrent use.
func (c *Client) Global() Global { return *c.global.Load() }

// SetGlobal applies new global settings: rates at once, queue limits at
// the next queue pass (kicked now). With save, a GlobalPersister stores
// them first and a failure changes nothing. Concurrent calls are ordered.
func (c *Client) SetGlobal(g Global, save bool) error {
	c.globalMu.Lock()
	defer c.globalMu.Unlock()
	return c.setGlobal(g, save)
}

// setGlobal is SetGlobal with globalMu held.
func (c *Client) setGlobal(g Global, save bool) error {
	if g.LimitAction == "" {
		g.LimitAction = resume.LimitStop
	}
	if err := checkGlobal(g); err != nil {
		return err
	}
	if gp, ok := c.cfg.Persister.(GlobalPersister); ok && save {
		if err := gp.SaveGlobal(g); err != nil {
			return err
		}
	}
	c.global.Store(&g)
	c.SetGlobalRates(g.MaxDown, g.MaxUp)
	c.kickQueue()
	return nil
}

// UpdateGlobal reads, changes and applies the global settings as one step
// against other updates; f may refuse with an error.
func (c *Client) UpdateGlobal(f func(g *Global) error) (Global, error) {
	c.globalMu.Lock()
	defer c.globalMu.Unlock()
	g := c.Global()
	if err := f(&g); err != nil {
		return Global{}, err
	}
	if err := c.setGlobal(g, true); err != nil {
		return Global{}, err
	}
	return g, nil
}
