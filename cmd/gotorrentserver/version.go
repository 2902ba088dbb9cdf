package main

import "runtime/debug"

// version is what /stats reports: `make build` sets it from git describe
// (-ldflags "-X main.version=..."); a `go install module@version` build
// takes the module's version; anything else is "dev".
var version = moduleVersion("dev")

func moduleVersion(def string) string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return def
}
