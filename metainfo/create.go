package metainfo

import (
	"crypto/sha1"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CreateOptions controls Create. Zero values pick sensible defaults.
type CreateOptions struct {
	PieceLength int64      // 0: chosen from the total size
	Trackers    [][]string // tiers
	WebSeeds    []string
	Private     bool
	Comment     string
	CreatedBy   string
	Date        time.Time // zero: now; set for reproducible output
	Workers     int       // hashing goroutines; 0: one per core
}

// Create builds a v1 torrent of a file or a folder (its regular files, sorted
// by path) and returns the .torrent bytes. Pieces are hashed in parallel, each
// worker reading its own pieces with pread, so throughput scales with cores
// rather than being bound to a single reader.
func Create(path string, opt CreateOptions) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	name := filepath.Base(filepath.Clean(path))
	if err := checkComponent(name); err != nil {
		return nil, fmt.Errorf("metainfo: create: name: %v", err)
	}
	var files []File
	if st.IsDir() {
		if files, err = listFiles(path); err != nil {
			return nil, err
		}
	} else {
		files = []File{{Path: []string{name}, Length: st.Size()}}
	}
	mi := &MetaInfo{Name: name, SingleFile: !st.IsDir(), Files: files}
	for i := range mi.Files {
		mi.Files[i].Offset = mi.TotalLength
		mi.TotalLength += mi.Files[i].Length
	}
	if mi.TotalLength == 0 {
		return nil, fmt.Errorf("metainfo: create: %s holds no data", path)
	}
	mi.PieceLength = opt.PieceLength
	if mi.PieceLength == 0 {
		mi.PieceLength = AutoPieceLength(mi.TotalLength)
	}
	if mi.PieceLength < 16<<10 || mi.PieceLength > MaxPieceLength {
		return nil, fmt.Errorf("metainfo: create: piece length %d out of range (16 KiB..256 MiB)", mi.PieceLength)
	}
	n := (mi.TotalLength + mi.PieceLength - 1) / mi.PieceLength
	mi.Pieces = make([]Hash, n)
	if err := hashPieces(filepath.Dir(filepath.Clean(path)), mi, opt.Workers); err != nil {
		return nil, err
	}
	return encodeTorrent(mi, opt)
}

// AutoPieceLength aims at about 1,500 pieces, a power of two between
// 32 KiB and 16 MiB, the range common clients choose from.
func AutoPieceLength(total int64) int64 {
	pl := int64(32 << 10)
	for pl < 16<<20 && total/pl > 1500 {
		pl *= 2
	}
	return pl
}

func listFiles(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p) // follows symlinks to files, like mktorrent
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, File{Path: strings.Split(filepath.ToSlash(rel), "/"), Length: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metainfo: create: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("metainfo: create: %s has no files", dir)
	}
	sort.Slice(files, func(i, j int) bool {
		return strings.Join(files[i].Path, "/") < strings.Join(files[j].Path, "/")
	})
	return files, nil
}

// hashPieces fills mi.Pieces. Workers claim small runs of consecutive pieces
// so that each keeps reading forward through the same file handle.
func hashPieces(root string, mi *MetaInfo, workers int) error {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	const run = 4
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &spanReader{root: root, mi: mi}
			defer r.close()
			buf := make([]byte, mi.PieceLength)
			for {
				start := int(next.Add(run)) - run
				if start >= len(mi.Pieces) {
					return
				}
				for i := start; i < min(start+run, len(mi.Pieces)); i++ {
					b := buf[:mi.PieceSize(i)]
					if err := r.read(i, b); err != nil {
						once.Do(func() { firstErr = err })
						next.Store(int64(len(mi.Pieces))) // stop the others
						return
					}
					mi.Pieces[i] = sha1.Sum(b)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// spanReader reads pieces through one cached file handle per worker.
type spanReader struct {
	root string
	mi   *MetaInfo
	fi   int
	f    *os.File
}

func (r *spanReader) read(piece int, dst []byte) error {
	for _, s := range r.mi.PieceSpans(piece) {
		if r.f == nil || r.fi != s.File {
			r.close()
			f, err := os.Open(r.filePath(s.File))
			if err != nil {
				return fmt.Errorf("metainfo: create: %w", err)
			}
			r.f, r.fi = f, s.File
		}
		if _, err := r.f.ReadAt(dst[:s.Length], s.Offset); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("metainfo: create: %s changed while hashing: %w", r.f.Name(), err)
		}
		dst = dst[s.Length:]
	}
	return nil
}

func (r *spanReader) filePath(fi int) string {
	p := r.mi.Files[fi].Path
	if r.mi.SingleFile {
		return filepath.Join(r.root, p[0])
	}
	return filepath.Join(append([]string{r.root, r.mi.Name}, p...)...)
}

func (r *spanReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

func encodeTorrent(mi *MetaInfo, opt CreateOptions) ([]byte, error) {
	pieces := make([]byte, 0, 20*len(mi.Pieces))
	for _, h := range mi.Pieces {
		pieces = append(pieces, h[:]...)
	}
	info := map[string]any{
		"name":         mi.Name,
		"piece length": mi.PieceLength,
		"pieces":       pieces,
	}
	if mi.SingleFile {
		info["length"] = mi.TotalLength
	} else {
		files := make([]any, len(mi.Files))
		for i, f := range mi.Files {
			path := make([]any, len(f.Path))
			for j, c := range f.Path {
				path[j] = c
			}
			files[i] = map[string]any{"length": f.Length, "path": path}
		}
		info["files"] = files
	}
	if opt.Private {
		info["private"] = int64(1)
	}
	top := map[string]any{"info": info}
	var tiers []any
	for _, tier := range opt.Trackers {
		var t []any
		for _, u := range tier {
			if u != "" {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			tiers = append(tiers, t)
		}
	}
	if len(tiers) > 0 {
		top["announce"] = tiers[0].([]any)[0]
		top["announce-list"] = tiers
	}
	if len(opt.WebSeeds) > 0 {
		ws := make([]any, len(opt.WebSeeds))
		for i, w := range opt.WebSeeds {
			ws[i] = w
		}
		top["url-list"] = ws
	}
	if opt.Comment != "" {
		top["comment"] = opt.Comment
	}
	top["created by"] = orDefault(opt.CreatedBy, "GoTorrentServer")
	date := opt.Date
	if date.IsZero() {
		date = time.Now()
	}
	top["creation date"] = date.Unix()
	return Encode(top)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
