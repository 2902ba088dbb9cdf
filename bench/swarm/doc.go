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
//
// With Config.RateCap and Config.RTT the connections are WAN-like peers: a
// capped leecher counts received blocks at most at its cap and only then
// asks for more, so the peer under test sees a remote that takes its cap
// and no more; a capped seeder sends at most its cap; requests and answers
// are delayed by the round trip. Conns and Shares give each connection's
// bytes and time present in a window (closed connections included), for
// fairness measures such as Jain's index.
//
// Config.Transport chooses how dialed connections are made: plaintext TCP;
// TCP with an MSE handshake (RC4 required), which the dialing goroutine
// runs before the connection joins a gnet loop, where RC4 then encrypts
// and decrypts every byte; or uTP, each connection from a UDP socket of
// its own (libtorrent closes a second connection from the same address and
// port as a duplicate), a few netio/utp Mux loops driving them as gnet's
// loops do. The peer protocol above is the same code on all three.
package swarm
