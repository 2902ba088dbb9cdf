// Package engine is the BitTorrent engine: a Client holding one Session per
// torrent, the lanes they share for blocking work, and the snapshots the
// API reads. It never touches a socket: the network layer (netio) hands it
// handshaken connections as PeerConn and delivers decoded messages.
//
// Concurrency. A Session is a single-threaded state machine: its events
// (peer messages, job outcomes, ticks, API commands) queue in its inbox and
// a small pool of runners handles them one batch at a time, never two
// runners on one session (actor.go), so session state takes no locks.
// Blocking work never runs on a runner: it is a job on one of the client's
// bounded lanes (jobs.go) whose outcome comes back as an event. Other
// goroutines read a session only through its published, immutable
// Snapshot, and act on it only through Client and Session methods that post
// events. Client methods are safe for concurrent use.
//
// A Session coordinates parts that each own one concern and are tested on
// their own:
//
//   - lifecycle (states.go): the torrent's state and the table of moves;
//   - swarm (swarm.go) and addrBook (addrbook.go): connected peers, and the
//     addresses to dial with their backoff;
//   - transfer (download.go): the picker, pieces being assembled, the
//     verified set kept while stopped, and the pieces' priorities from
//     the file priorities (priority.go);
//   - uploadQueue (upload.go): peers waiting for reads, and the choker;
//   - discovery (announce.go, dht.go): trackers and the DHT;
//   - metaPhase (magnet.go): a magnet's info dict, fetched and served;
//   - persistence (resume.go): when to hand the persister a record;
//   - mover (move.go): moving the data to another folder.
//
// The peer protocol's handlers are in protocol.go, upload.go, download.go,
// magnet.go and pex.go; abuse bounds and bans in guard.go; the change
// record the API can follow in changes.go.
//
// Imports: metainfo, engine/wire and the engine's own leaf packages
// (picker, choke, storage, tracker, ext, ratelimit, resume). Nothing here
// imports netio, httpapi or engine/state, which depend on engine instead.
package engine
