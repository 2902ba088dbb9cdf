// Command gotorrentserver is a BitTorrent daemon for seedboxes, managed over
// an HTTP JSON API, and a set of tools around it (info, create).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the daemon: peers, HTTP API, state (the default)", runServe},
		{"info", "print what a .torrent file or magnet link holds", runInfo},
		{"create", "make a .torrent of a file or folder", runCreate},
		{"get", "download a torrent (and optionally keep seeding it)", runGet},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit status, so tests can drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "-help" {
		args = append([]string{"serve"}, args...) // plain `gotorrentserver [flags]` runs the daemon
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(args[1:], stdout); errors.Is(err, flag.ErrHelp) {
				return 0
			} else if err != nil {
				fmt.Fprintf(stderr, "gotorrentserver %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "gotorrentserver: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gotorrentserver COMMAND [flags] [args]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'gotorrentserver COMMAND -h' for a command's flags.")
}
