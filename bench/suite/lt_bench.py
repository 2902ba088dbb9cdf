#!/usr/bin/python3
"""A python3-libtorrent peer for GoTorrentServer's benchmarks (bench/suite).

Settings as netio/peertest/lt_peer.py --plaintext: 127.0.0.1 only; DHT,
local peer discovery, UPnP, NAT-PMP and PEX off; no protocol encryption
(see --encrypt).
On top, for benchmarks:
  - TCP only (uTP off both ways), unless --utp-only. Every other client
    here speaks TCP, and between two libtorrents on loopback uTP's
    delay-based congestion control holds a transfer to about 5 MB/s (with
    the kernel's default socket buffers); with uTP only off on the seeder,
    a libtorrent downloader loses about 3 s trying uTP before TCP.
  - --encrypt forces protocol encryption (MSE) with RC4, in and out, as
    lt_peer.py --encrypt: plaintext handshakes, and MSE with plaintext
    payload, are refused.
  - --utp-only turns TCP off both ways and uTP on: no TCP connection is
    made or kept (libtorrent still listens on TCP, and closes what it
    accepts there before a byte).
  - --socket-buffers sets SO_RCVBUF and SO_SNDBUF of its sockets (bytes):
    with the kernel's default UDP buffers a window's burst overflows the
    receiver, so uTP needs bigger ones; our daemon asks 4 MiB for its UDP
    socket.
  - --peer-flags prints "PEERS n utp rc4" at start and whenever it
    changes: the peers seen connected so far (by address and port, over
    all torrents), how many of them were on uTP, how many RC4-encrypted.
    It reads every peer's info five times a second and remembers every
    peer, so it is for runs with few peers that do not measure this
    process.
  - --connections raises the connection limit (default 200), so a large
    synthetic swarm can connect.
  - --connect-file names a file polled every 20 ms (once seeding) whose new
    lines (HOST:PORT) are peers to dial, so one seeder serves one client
    after another (transmission-cli cannot be told to dial a loopback peer).
    Peers are dialed for the first torrent.
  - --torrent may be given several times, and --torrent-dir adds every
    .torrent in a folder: all share --dir.
  - --preset high_performance_seed starts from lt.high_performance_seed()
    instead of libtorrent's defaults (the settings above still apply).
  - --upload-rate-limit sets the session's upload_rate_limit (bytes/s).
  - --resume-dir keeps resume data (one <infohash>.resume per torrent):
    --prepare checks the torrents that have none, all at once (libtorrent
    checks auto-managed torrents one at a time, about one a second), saves
    theirs, prints "PREPARED" and exits; later runs add every torrent from
    its resume data, as libtorrent's defaults add a torrent (queued,
    auto-managed), without checking it again.
  - --global-class puts every IPv4 and IPv6 address in the global peer
    class. By default libtorrent puts loopback and private addresses in its
    local class, which ignores unchoke slots and rate limits: on 127.0.0.x
    every synthetic peer would be unchoked and unlimited, unlike remote
    peers.
Prints "PORT n" once listening, "SEEDING seconds" once it holds every piece
of every torrent (a seeder after its check, a downloader when complete),
then "STATUS upload_rate peers" every second (summed over torrents). It runs
until stopped or --timeout.
"""
import argparse
import os
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", action="append", default=[])
    ap.add_argument("--torrent-dir")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--connect-file")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--preset", choices=["default", "high_performance_seed"], default="default")
    ap.add_argument("--upload-rate-limit", type=int, default=0)
    ap.add_argument("--global-class", action="store_true")
    ap.add_argument("--resume-dir")
    ap.add_argument("--prepare", action="store_true")
    ap.add_argument("--encrypt", action="store_true")
    ap.add_argument("--utp-only", action="store_true")
    ap.add_argument("--socket-buffers", type=int, default=0)
    ap.add_argument("--peer-flags", action="store_true")
    a = ap.parse_args()
    torrents = list(a.torrent)
    if a.torrent_dir:
        torrents += sorted(os.path.join(a.torrent_dir, n) for n in os.listdir(a.torrent_dir) if n.endswith(".torrent"))
    if not torrents:
        ap.error("no torrent")

    settings = lt.high_performance_seed() if a.preset == "high_performance_seed" else {}
    settings.update({
        "listen_interfaces": "127.0.0.1:%d" % a.port,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification,
        "user_agent": "lt_seed", "announce_to_all_tiers": True,
        "min_reconnect_time": 1, "peer_connect_timeout": 3,
        "out_enc_policy": lt.enc_policy.pe_disabled,
        "in_enc_policy": lt.enc_policy.pe_disabled,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
    })
    if a.encrypt:
        # Forced refuses plaintext handshakes; rc4 (not both) also refuses
        # MSE that agrees on plaintext payload.
        settings.update({"out_enc_policy": lt.enc_policy.pe_forced, "in_enc_policy": lt.enc_policy.pe_forced,
                         "allowed_enc_level": lt.enc_level.rc4, "prefer_rc4": True})
    if a.utp_only:
        settings.update({"enable_outgoing_tcp": False, "enable_incoming_tcp": False,
                         "enable_outgoing_utp": True, "enable_incoming_utp": True})
    if a.socket_buffers > 0:
        settings.update({"recv_socket_buffer_size": a.socket_buffers, "send_socket_buffer_size": a.socket_buffers})
    if a.upload_rate_limit > 0:
        settings["upload_rate_limit"] = a.upload_rate_limit
    if a.connections > 0:
        settings["connections_limit"] = a.connections
        # Accepting thousands of peers at once needs more than the default
        # half-open and accept budgets.
        settings["listen_queue_size"] = min(a.connections, 4096)
    ses = lt.session(settings, 0)  # no default plugins: no ut_pex, no ut_metadata
    if a.global_class:
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    if a.prepare and not a.resume_dir:
        ap.error("--prepare needs --resume-dir")
    handles = []
    missing = []  # handles of torrents with no resume data yet
    for t in torrents:
        ti = lt.torrent_info(t)
        atp = lt.add_torrent_params()
        rp = a.resume_dir and os.path.join(a.resume_dir, "%s.resume" % ti.info_hashes().v1)
        if rp and os.path.exists(rp):
            with open(rp, "rb") as f:
                atp = lt.read_resume_data(f.read())
            atp.flags = lt.add_torrent_params().flags  # as a fresh add
        elif rp:
            missing.append(len(handles))
        if a.prepare:
            atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        atp.ti = ti
        atp.save_path = a.dir
        handles.append(ses.add_torrent(atp))
    if a.prepare:
        prepare(ses, handles, missing, a.resume_dir, a.timeout)
        return
    h = handles[0]
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host, int(port)))

    deadline = time.time() + 10
    while ses.listen_port() == 0 and time.time() < deadline:
        time.sleep(0.05)
    print("PORT %d" % ses.listen_port(), flush=True)

    start = time.time()
    seeding = False
    flags = PeerFlags() if a.peer_flags else None
    dialed = 0
    last = 0
    # Every status() is a round trip to the network thread: with many
    # torrents, poll for completion every 200 ms rather than every 20 ms,
    # and only once a second after it, so polling costs the measured
    # process little.
    check_every = 0.02 if len(handles) == 1 else 0.2
    last_check = 0
    while time.time() - start < a.timeout:
        if not seeding and time.time() - last_check >= check_every:
            last_check = time.time()
            if all(x.status().is_seeding for x in handles):
                seeding = True
                print("SEEDING %.3f" % (time.time() - start), flush=True)
        if flags and time.time() - flags.last >= 0.2:
            flags.poll(handles)
        if seeding and a.connect_file and os.path.exists(a.connect_file):
            with open(a.connect_file) as f:
                lines = [l.strip() for l in f if l.strip()]
            for p in lines[dialed:]:
                host, port = p.rsplit(":", 1)
                h.connect_peer((host, int(port)))
            dialed = len(lines)
        if time.time() - last >= 1:
            last = time.time()
            sts = [x.status() for x in handles]
            print("STATUS %d %d" % (sum(x.upload_payload_rate for x in sts), sum(x.num_peers for x in sts)), flush=True)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert):
                print("ERROR %s" % alert.message(), flush=True)
        time.sleep(0.02)
    print("TIMEOUT", flush=True)


# utp_socket is bit 17 of peer_info.flags in libtorrent 2.0 (i2p_socket 16,
# ssl_socket 18, rc4_encrypted 19); the Python binding does not export it.
UTP_SOCKET = getattr(lt.peer_info, "utp_socket", 1 << 17)


class PeerFlags:
    """The peers seen so far and their transport and encryption (a peer's
    flags are set once its handshake is done and do not change)."""

    def __init__(self):
        self.seen = {}
        self.last = 0
        print("PEERS 0 0 0", flush=True)

    def poll(self, handles):
        self.last = time.time()
        n = len(self.seen)
        for h in handles:
            for p in h.get_peer_info():
                if not p.flags & (lt.peer_info.handshake | lt.peer_info.connecting):
                    self.seen[p.ip] = p.flags
        if len(self.seen) != n:
            utp = sum(1 for f in self.seen.values() if f & UTP_SOCKET)
            rc4 = sum(1 for f in self.seen.values() if f & lt.peer_info.rc4_encrypted)
            print("PEERS %d %d %d" % (len(self.seen), utp, rc4), flush=True)


def prepare(ses, handles, missing, resume_dir, timeout):
    """Waits until every torrent seeds, saves the resume data of those in
    missing, and prints PREPARED."""
    deadline = time.time() + timeout
    while not all(x.status().is_seeding for x in handles):
        if time.time() > deadline:
            print("TIMEOUT", flush=True)
            return
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert):
                print("ERROR %s" % alert.message(), flush=True)
        time.sleep(0.1)
    os.makedirs(resume_dir, exist_ok=True)
    for i in missing:
        handles[i].save_resume_data()
    saved = 0
    while saved < len(missing) and time.time() < deadline:
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.save_resume_data_alert):
                path = os.path.join(resume_dir, "%s.resume" % alert.params.info_hashes.v1)
                with open(path + ".tmp", "wb") as f:
                    f.write(lt.write_resume_data_buf(alert.params))
                os.rename(path + ".tmp", path)
                saved += 1
            elif isinstance(alert, lt.save_resume_data_failed_alert):
                print("ERROR %s" % alert.message(), flush=True)
                return
        time.sleep(0.02)
    print("PREPARED %d" % saved, flush=True)


if __name__ == "__main__":
    main()
