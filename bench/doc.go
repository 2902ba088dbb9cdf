// Package bench holds side-by-side benchmarks of GoTorrentServer against the
// clients seedbox operators use today, run on this machine on 127.0.0.1.
// They print figures (go test -bench); none of them is a pass/fail test.
package bench
