package swarm

import "errors"

// ErrConfig reports a Config that cannot run.
var ErrConfig = errors.New("swarm: bad config")
