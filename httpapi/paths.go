package httpapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rootDir is the download root, both as configured and with symlinks
// resolved: users may name folders through either spelling.
type rootDir struct {
	given string // cleaned, as configured
	real  string // filepath.EvalSymlinks(given)
}

// newRootDir checks that dir is absolute, creates it if missing and
// resolves its symlinks once.
func newRootDir(dir string) (rootDir, error) {
	if !filepath.IsAbs(dir) {
		return rootDir{}, fmt.Errorf("%w: %q", ErrRootNotAbs, dir)
	}
	given := filepath.Clean(dir)
	if err := os.MkdirAll(given, 0o755); err != nil {
		return rootDir{}, fmt.Errorf("httpapi: download root: %w", err)
	}
	real, err := filepath.EvalSymlinks(given)
	if err != nil {
		return rootDir{}, fmt.Errorf("httpapi: download root: %w", err)
	}
	return rootDir{given: given, real: real}, nil
}

// within reports whether the cleaned absolute path p is root or below it.
func within(root, p string) bool {
	if p == root {
		return true
	}
	if root == string(filepath.Separator) {
		return filepath.IsAbs(p)
	}
	return strings.HasPrefix(p, root+string(filepath.Separator))
}

// errOutside is the answer to every escape attempt; it names no real path.
func errOutside(p string) error {
	return badRequest("folder %q is outside the download root", p)
}

// resolve maps a user-given folder (relative to the root, or absolute
// inside it; "" is the root) to a real path inside the root without
// creating anything. ".." may not climb out, and the deepest existing
// ancestor must, after resolving its symlinks, still be inside the root.
// Whatever does not exist yet is below that ancestor and contains no
// symlinks, so creating it cannot leave the root either.
func (r rootDir) resolve(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", badRequest("folder contains a NUL byte")
	}
	var abs string
	switch {
	case p == "":
		abs = r.real
	case filepath.IsAbs(p):
		abs = filepath.Clean(p)
	default:
		abs = filepath.Join(r.real, p)
	}
	switch {
	case within(r.real, abs):
	case within(r.given, abs):
		rel, err := filepath.Rel(r.given, abs)
		if err != nil {
			return "", errOutside(p)
		}
		abs = filepath.Join(r.real, rel)
	default:
		return "", errOutside(p)
	}
	existing := abs
	for {
		_, err := os.Lstat(existing)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", badRequest("folder %q: not usable", p)
		}
		parent := filepath.Dir(existing)
		if parent == existing || !within(r.real, parent) {
			return "", errOutside(p)
		}
		existing = parent
	}
	// A dangling symlink fails here rather than being followed by MkdirAll.
	real, err := filepath.EvalSymlinks(existing)
	if err != nil || !within(r.real, real) {
		return "", errOutside(p)
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return "", badRequest("folder %q: not a directory", p)
	}
	rest, err := filepath.Rel(existing, abs)
	if err != nil {
		return "", errOutside(p)
	}
	return filepath.Join(real, rest), nil
}

// ensure resolves p and creates the folder (0755) if missing, checking
// again afterwards in case the tree changed in between.
func (r rootDir) ensure(p string) (string, error) {
	dir, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", badRequest("folder %q: cannot create it", p)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || !within(r.real, real) {
		return "", errOutside(p)
	}
	return real, nil
}
