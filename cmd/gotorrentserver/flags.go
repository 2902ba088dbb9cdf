package main

import (
	"errors"
	"flag"
	"io"
	"strings"
)

// helpError is -h or -help given to a command: run prints the command's
// usage on stdout and exits 0.
type helpError struct{ fs *flag.FlagSet }

func (e *helpError) Error() string { return "help requested" }

// usageError is a command line the command cannot use: run prints err and
// the command's usage on stderr and exits 2.
type usageError struct {
	fs  *flag.FlagSet
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErr is a usageError of fs with this message.
func usageErr(fs *flag.FlagSet, msg string) error {
	return &usageError{fs: fs, err: errors.New(msg)}
}

// parseFlags parses args with fs, flags anywhere among the arguments (as in
// `get FILE.torrent -o DIR`): the flag package alone stops at the first
// argument. fs prints nothing itself; run prints its usage where it
// belongs (stdout for help, stderr for a mistake).
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(permuteArgs(fs, args))
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpError{fs}
	case err != nil:
		return &usageError{fs: fs, err: err}
	}
	return nil
}

// permuteArgs moves every flag (with its value, for a flag that takes one
// as the next argument) before the positional arguments, which follow a
// "--" so that one starting with a dash stays an argument. Everything after
// a "--" in args is positional; so is a lone "-". Unknown flags stay flags,
// for Parse to refuse.
func permuteArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(pos) == 0 {
		return flags
	}
	return append(append(flags, "--"), pos...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
