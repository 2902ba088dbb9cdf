// Package bench holds side-by-side benchmarks of GoTorrentServer against the
// clients seedbox operators use today, run on this machine on 127.0.0.1.
// They print figures; none of them is a pass/fail test.
//
// This package has the `go test -bench` micro-benchmarks (create beside
// mktorrent). The scenario suite (downloads, seeding to synthetic swarms,
// idle connections, many torrents, recheck) is bench/cmd/gtsbench, built on
// bench/suite and the synthetic swarm of bench/swarm; it writes its tables
// to bench/results/.
package bench
