package main

// Clean output: stdout of info -json is one JSON document (issue 11).

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// decodeOneJSON requires out to be exactly one JSON document (whitespace
// around it allowed) and decodes it into v.
func decodeOneJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	r := bytes.NewReader(out)
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v:\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout has more than one JSON value:\n%s", out)
	}
	rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), r))
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stdout has %q after the JSON document", rest)
	}
}

// runBinary runs the built binary with args, returning stdout, stderr and
// the exit status; it gives up after limit.
func runBinary(t *testing.T, limit time.Duration, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return runBinaryAt(t, bin, limit, args...)
}

// TestInfoJSONStdoutClean: `info -json FILE` run as the real binary prints
// exactly one JSON document on stdout, describing the file.
func TestInfoJSONStdoutClean(t *testing.T) {
	raw, mi := makeFolderTorrent(t, t.TempDir(), "clean", []string{"http://127.0.0.1:1/announce"},
		fileSpec{"x.bin", 100000}, fileSpec{"y.bin", 1})
	stdout, stderr, code := runBinary(t, 30*time.Second, "info", "-json", writeTorrentFile(t, raw))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got infoJSON
	decodeOneJSON(t, stdout, &got)
	if got.InfoHash != mi.InfoHash.String() || got.TotalSize != 100001 || len(got.Files) != 2 || got.Name != "clean" {
		t.Fatalf("info -json: %+v", got)
	}
}
