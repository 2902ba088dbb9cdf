package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time: go build -ldflags
// "-X main.version=v1.2.3 -X main.commit=REV" (make build passes `git
// describe --always --dirty` and `git rev-parse HEAD`). Empty: what the Go
// toolchain stamped into the binary, if anything (-buildvcs=false stamps
// no revision).
var version, commit string

// Version is this binary's version: the linked-in one, else the module's
// (go install pkg@v1.2.3), else the VCS revision it was built from, else
// "devel".
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev, dirty := vcsRevision(bi); rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return "devel-" + rev
	}
	return "devel"
}

// vcsRevision is the commit the toolchain stamped (go build inside a git
// checkout does; go test and go run do not) and whether the tree had
// uncommitted changes.
func vcsRevision(bi *debug.BuildInfo) (rev string, dirty bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return rev, dirty
}

// versionLine is what `gotorrentserver version` prints.
func versionLine() string {
	rev := "unknown"
	if commit != "" {
		rev = commit
	} else if bi, ok := debug.ReadBuildInfo(); ok {
		if r, dirty := vcsRevision(bi); r != "" {
			rev = r
			if dirty {
				rev += " (modified)"
			}
		}
	}
	return fmt.Sprintf("gotorrentserver %s (%s, commit %s)", Version(), runtime.Version(), rev)
}

func runVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage: gotorrentserver version") }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "version takes no arguments")
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}
