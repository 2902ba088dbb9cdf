package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gotorrentserver/metainfo"
)

// repeated collects a flag given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

func runCreate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	pieceLen := fs.String("piece-length", "auto", "piece length in bytes, or with a K/M suffix (e.g. 256K); auto aims at ~1500 pieces")
	var trackers, webSeeds repeated
	fs.Var(&trackers, "tracker", "tracker URL; repeat for more tiers, separate URLs of one tier by commas")
	fs.Var(&webSeeds, "webseed", "web seed URL (BEP 19); may repeat")
	private := fs.Bool("private", false, "mark the torrent private (BEP 27)")
	comment := fs.String("comment", "", "comment")
	out := fs.String("o", "", "output file (default NAME.torrent in the current folder)")
	workers := fs.Int("workers", 0, "hashing goroutines (default: one per core)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gotorrentserver create [flags] PATH")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(fs, "need exactly one file or folder")
	}
	pl, err := parseSize(*pieceLen)
	if err != nil {
		return err
	}
	opt := metainfo.CreateOptions{PieceLength: pl, Private: *private, Comment: *comment,
		WebSeeds: webSeeds, Workers: *workers}
	for _, t := range trackers {
		opt.Trackers = append(opt.Trackers, strings.Split(t, ","))
	}
	start := time.Now()
	b, err := metainfo.Create(fs.Arg(0), opt)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	mi, err := metainfo.Parse(b)
	if err != nil {
		return fmt.Errorf("created torrent does not parse: %w", err)
	}
	dest := *out
	if dest == "" {
		dest = mi.Name + ".torrent"
	}
	if err := writeFileAtomic(dest, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %s  %d pieces of %d, %s in %.2fs (%.0f MB/s)\n", mi.InfoHash, dest,
		mi.NumPieces(), mi.PieceLength, humanBytes(mi.TotalLength), elapsed.Seconds(),
		float64(mi.TotalLength)/1e6/elapsed.Seconds())
	return nil
}

func parseSize(s string) (int64, error) {
	if s == "auto" || s == "" || s == "0" {
		return 0, nil
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad piece length %q", s)
	}
	return n * mult, nil
}

// writeFileAtomic never leaves a half-written torrent under the final name.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gts-create-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
