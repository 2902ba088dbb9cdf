#!/usr/bin/python3
"""A python3-libtorrent peer for GoTorrentServer's benchmarks (bench/suite).

Settings as netio/peertest/lt_peer.py --plaintext: 127.0.0.1 only; DHT,
local peer discovery, UPnP, NAT-PMP and PEX off; no protocol encryption.
On top, for benchmarks:
  - TCP only (uTP off both ways). Every other client here speaks TCP, and
    between two libtorrents on loopback uTP's delay-based congestion control
    holds a transfer to about 5 MB/s; with uTP only off on the seeder, a
    libtorrent downloader loses about 3 s trying uTP before TCP.
  - --connections raises the connection limit (default 200), so a large
    synthetic swarm can connect.
  - --connect-file names a file polled every 20 ms (once seeding) whose new
    lines (HOST:PORT) are peers to dial, so one seeder serves one client
    after another (transmission-cli cannot be told to dial a loopback peer).
Prints "PORT n" once listening, "SEEDING seconds" once it holds every piece
(a seeder after its check, a downloader when complete), then
"STATUS upload_rate peers" every second. It runs until stopped or --timeout.
"""
import argparse
import os
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--connections", type=int, default=0)
    ap.add_argument("--connect-file")
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=3600)
    a = ap.parse_args()

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % a.port,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification,
        "user_agent": "lt_seed", "announce_to_all_tiers": True,
        "min_reconnect_time": 1, "peer_connect_timeout": 3,
        "out_enc_policy": lt.enc_policy.pe_disabled,
        "in_enc_policy": lt.enc_policy.pe_disabled,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
    }
    if a.connections > 0:
        settings["connections_limit"] = a.connections
        # Accepting thousands of peers at once needs more than the default
        # half-open and accept budgets.
        settings["listen_queue_size"] = min(a.connections, 4096)
    ses = lt.session(settings, 0)  # no default plugins: no ut_pex, no ut_metadata
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.dir
    h = ses.add_torrent(atp)
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host, int(port)))

    deadline = time.time() + 10
    while ses.listen_port() == 0 and time.time() < deadline:
        time.sleep(0.05)
    print("PORT %d" % ses.listen_port(), flush=True)

    start = time.time()
    seeding = False
    dialed = 0
    last = 0
    while time.time() - start < a.timeout:
        s = h.status()
        if s.is_seeding and not seeding:
            seeding = True
            print("SEEDING %.3f" % (time.time() - start), flush=True)
        if seeding and a.connect_file and os.path.exists(a.connect_file):
            with open(a.connect_file) as f:
                lines = [l.strip() for l in f if l.strip()]
            for p in lines[dialed:]:
                host, port = p.rsplit(":", 1)
                h.connect_peer((host, int(port)))
            dialed = len(lines)
        if time.time() - last >= 1:
            last = time.time()
            print("STATUS %d %d" % (s.upload_payload_rate, s.num_peers), flush=True)
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert):
                print("ERROR %s" % alert.message(), flush=True)
        time.sleep(0.02)
    print("TIMEOUT", flush=True)


if __name__ == "__main__":
    main()
