// Command gotorrentserver is a BitTorrent daemon for seedboxes, managed over
// an HTTP JSON API, and a set of tools around it (info, create).
package main

import (
	"errors"
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
		{"version", "print the version, the Go release and the commit it was built from", runVersion},
		{"help", "print this help, or a command's flags (help COMMAND)", nil},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit status, so tests can drive the CLI in-process: 0 on
// success and for help (printed on stdout), 1 when the command failed, 2 for
// a command line that could not be understood (usage on stderr).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"} // plain `gotorrentserver` runs the daemon
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if args[0] == "help" && len(args) > 1 && args[1] != "help" {
			// `help get` is `get -h`: one usage text, one place.
			args = []string{args[1], "-h"}
			break
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		args[0] = "version"
	}
	if strings.HasPrefix(args[0], "-") {
		args = append([]string{"serve"}, args...) // `gotorrentserver [flags]` runs the daemon
	}
	for _, c := range commands() {
		if c.name != args[0] || c.run == nil {
			continue
		}
		err := c.run(args[1:], stdout)
		var he *helpError
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &he):
			he.fs.SetOutput(stdout)
			he.fs.Usage()
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "gotorrentserver %s: %v\n", c.name, ue.err)
			ue.fs.SetOutput(stderr)
			ue.fs.Usage()
			return 2
		default:
			fmt.Fprintf(stderr, "gotorrentserver %s: %v\n", c.name, err)
			return 1
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
	fmt.Fprintln(w, "\nFlags may come before or after the arguments; -- ends them.")
	fmt.Fprintln(w, "Run 'gotorrentserver help COMMAND' (or 'gotorrentserver COMMAND -h') for a command's flags.")
}
