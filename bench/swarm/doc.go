// Package swarm is a synthetic BitTorrent swarm for benchmarks: one process
// drives up to tens of thousands of peer connections on loopback, all on a
// few gnet event loops (no goroutine per peer), so that the daemon under
// test, not the swarm, is what the measurement sees.
//
// Each connection is a small state machine acting as a leecher (requests
// blocks as fast as they are served, optionally verifying piece hashes), a
// seeder (serves blocks generated from a deterministic Payload, never from
// disk, optionally corrupting them) or an idle peer (handshake, then only
// keep-alives). Connections dial the target from many source addresses in
// 127.0.0.0/8, so a daemon's per-address limits can stay on; churn closes and
// reopens some of them every second.
package swarm
