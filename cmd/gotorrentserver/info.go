package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gotorrentserver/metainfo"
)

// infoJSON is the -json form of `info`; field names are stable for scripts.
type infoJSON struct {
	Name        string     `json:"name"`
	InfoHash    string     `json:"infohash"`
	PieceLength int64      `json:"piece_length,omitempty"`
	Pieces      int        `json:"pieces,omitempty"`
	TotalSize   int64      `json:"total_size,omitempty"`
	Private     bool       `json:"private"`
	Trackers    [][]string `json:"trackers"`
	WebSeeds    []string   `json:"web_seeds"`
	Files       []fileJSON `json:"files"`
	Peers       []string   `json:"peers,omitempty"`
	SelectOnly  []int      `json:"select_only,omitempty"`
	Magnet      bool       `json:"magnet,omitempty"`
}

type fileJSON struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
	Pad    bool   `json:"pad,omitempty"`
}

func runInfo(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	fetch := fs.Bool("fetch", false, "for a magnet: fetch the metadata from its peers (tr, x.pe) and print the full torrent")
	timeout := fs.Duration("timeout", 2*time.Minute, "with -fetch: give up after this long")
	var enc encryptionFlag
	enc.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gotorrentserver info [-json] FILE.torrent|MAGNET")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(fs, "need exactly one torrent file or magnet link")
	}
	arg := fs.Arg(0)
	var out *infoJSON
	var err error
	if *fetch && strings.HasPrefix(arg, "magnet:") {
		out, err = fetchMagnetInfo(arg, *timeout, enc.Encryption)
	} else {
		out, err = describe(arg)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printInfo(stdout, out)
	return nil
}

func describe(arg string) (*infoJSON, error) {
	if strings.HasPrefix(arg, "magnet:") {
		m, err := metainfo.ParseMagnet(arg)
		if err != nil {
			return nil, err
		}
		out := &infoJSON{Name: m.Name, InfoHash: m.InfoHash.String(), Magnet: true,
			WebSeeds: nonNil(m.WebSeeds), Peers: m.Peers, SelectOnly: m.SelectOnly, Files: []fileJSON{}}
		for _, t := range m.Trackers {
			out.Trackers = append(out.Trackers, []string{t})
		}
		if out.Trackers == nil {
			out.Trackers = [][]string{}
		}
		return out, nil
	}
	b, err := readTorrentFile(arg)
	if err != nil {
		return nil, err
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		return nil, err
	}
	return describeMeta(mi), nil
}

func describeMeta(mi *metainfo.MetaInfo) *infoJSON {
	out := &infoJSON{Name: mi.Name, InfoHash: mi.InfoHash.String(), PieceLength: mi.PieceLength,
		Pieces: mi.NumPieces(), TotalSize: mi.TotalLength, Private: mi.Private,
		Trackers: mi.Trackers, WebSeeds: nonNil(mi.WebSeeds)}
	if out.Trackers == nil {
		out.Trackers = [][]string{}
	}
	for _, f := range mi.Files {
		p := strings.Join(f.Path, "/")
		if !mi.SingleFile {
			p = mi.Name + "/" + p
		}
		out.Files = append(out.Files, fileJSON{Path: p, Length: f.Length, Pad: f.Pad})
	}
	return out
}

// readTorrentFile refuses files larger than any real torrent before reading.
func readTorrentFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(metainfo.DefaultLimits.MaxSize)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > metainfo.DefaultLimits.MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a torrent file", path, metainfo.DefaultLimits.MaxSize)
	}
	return b, nil
}

func printInfo(w io.Writer, o *infoJSON) {
	fmt.Fprintf(w, "name:         %s\n", o.Name)
	fmt.Fprintf(w, "infohash:     %s\n", o.InfoHash)
	if o.Magnet {
		fmt.Fprintln(w, "size:         unknown until metadata is fetched from peers")
	} else {
		fmt.Fprintf(w, "piece length: %d\n", o.PieceLength)
		fmt.Fprintf(w, "pieces:       %d\n", o.Pieces)
		fmt.Fprintf(w, "total size:   %d (%s)\n", o.TotalSize, humanBytes(o.TotalSize))
		fmt.Fprintf(w, "private:      %v\n", o.Private)
	}
	for i, tier := range o.Trackers {
		fmt.Fprintf(w, "tracker tier %d: %s\n", i, strings.Join(tier, " "))
	}
	for _, ws := range o.WebSeeds {
		fmt.Fprintf(w, "web seed:     %s\n", ws)
	}
	for _, p := range o.Peers {
		fmt.Fprintf(w, "peer:         %s\n", p)
	}
	if len(o.Files) > 0 {
		fmt.Fprintf(w, "files:        %d\n", len(o.Files))
	}
	for _, f := range o.Files {
		pad := ""
		if f.Pad {
			pad = " (padding)"
		}
		fmt.Fprintf(w, "  %14d  %s%s\n", f.Length, f.Path, pad)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
