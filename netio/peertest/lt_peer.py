#!/usr/bin/python3
"""A python3-libtorrent peer for GoTorrentServer's tests and benchmarks.

Runs on 127.0.0.1 only, with DHT, local peer discovery, UPnP, NAT-PMP and
(unless --pex) peer exchange off, and (with --plaintext) encryption off or
(with --encrypt) forced to RC4 both ways. Prints "PORT n" once listening, then
"STATUS state progress down up peers" lines, and "DONE seconds" when a
leecher completes (it then exits unless --keep). "ACTIVE" says the torrent
is running: until then, incoming connections for it are refused (a torrent
starts paused until libtorrent's queue starts it, and may report "seeding"
before that). With --progress, also
"PROGRESS unixtime done received sent peers" lines (byte counts: verified,
and payload received and sent since start) at that period.

With --download-limit or --upload-limit, every peer, loopback ones included,
is treated as remote: libtorrent's rate limits and unchoke slots apply to it.
"""
import argparse
import sys
import time

import libtorrent as lt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent")
    ap.add_argument("--magnet")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--keep", action="store_true", help="keep running after completion")
    ap.add_argument("--pex", action="store_true")
    ap.add_argument("--plaintext", action="store_true",
                    help="no protocol encryption: plain handshakes only, in and out")
    ap.add_argument("--utp-only", action="store_true",
                    help="uTP only: no TCP connections, in or out")
    ap.add_argument("--socket-buffers", type=int, default=0,
                    help="SO_RCVBUF and SO_SNDBUF of its sockets, bytes (0: the kernel's default)")
    ap.add_argument("--encrypt", action="store_true",
                    help="protocol encryption forced, RC4 only, in and out: plaintext peers are refused")
    ap.add_argument("--seed-mode", action="store_true", help="trust the data without checking")
    ap.add_argument("--recheck", action="store_true", help="time a full recheck and exit")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--dht-bootstrap", help="host:port: enable the DHT, joined only through this node")
    ap.add_argument("--download-limit", type=int, default=0, help="bytes/s, all peers together")
    ap.add_argument("--upload-limit", type=int, default=0, help="bytes/s, all peers together")
    ap.add_argument("--progress", type=float, default=0, help="seconds between PROGRESS lines; 0: none")
    a = ap.parse_args()

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % a.port,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
        "user_agent": "lt_peer", "announce_to_all_tiers": True,
        "min_reconnect_time": 1, "peer_connect_timeout": 3,
    }
    if a.plaintext:
        # By default libtorrent opens every outgoing connection with an
        # obfuscated (MSE) handshake and retries in plaintext only after
        # the peer hangs up, a second or so later.
        settings["out_enc_policy"] = lt.enc_policy.pe_disabled
        settings["in_enc_policy"] = lt.enc_policy.pe_disabled
    if a.utp_only:
        settings.update({"enable_outgoing_tcp": False, "enable_incoming_tcp": False,
                         "enable_outgoing_utp": True, "enable_incoming_utp": True})
    if a.socket_buffers:
        settings.update({"recv_socket_buffer_size": a.socket_buffers,
                         "send_socket_buffer_size": a.socket_buffers})
    if a.encrypt:
        # Forced refuses plaintext handshakes in and out; rc4 (not both)
        # also refuses MSE with plaintext payload.
        settings["out_enc_policy"] = lt.enc_policy.pe_forced
        settings["in_enc_policy"] = lt.enc_policy.pe_forced
        settings["allowed_enc_level"] = lt.enc_level.rc4
        settings["prefer_rc4"] = True
    if a.dht_bootstrap:
        # Loopback nodes are refused unless the IP restrictions are lifted.
        settings.update({"enable_dht": True, "dht_bootstrap_nodes": a.dht_bootstrap,
                         "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False})
    if a.download_limit or a.upload_limit:
        # The limits are payload ceilings the tests compare against: without
        # this, libtorrent charges an estimate of TCP/IP headers to them too.
        settings.update({"download_rate_limit": a.download_limit, "upload_rate_limit": a.upload_limit,
                         "rate_limit_ip_overhead": False})
    ses = lt.session(settings, 0)  # no default plugins: no ut_pex, no ut_metadata
    if a.download_limit or a.upload_limit:
        # By default loopback and LAN addresses fall in the local peer
        # class, which has no rate limit and ignores unchoke slots; a limit
        # set on the session would not touch our 127.0.0.1 peers.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    ses.add_extension("ut_metadata")
    if a.pex:
        ses.add_extension("ut_pex")
    ses.add_extension("smart_ban")

    if a.magnet:
        atp = lt.parse_magnet_uri(a.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.dir
    if a.seed_mode:
        atp.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(atp)
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))

    deadline = time.time() + 10
    while ses.listen_port() == 0 and time.time() < deadline:
        time.sleep(0.05)
    print("PORT %d" % ses.listen_port(), flush=True)

    if a.recheck:
        while h.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            time.sleep(0.01)
        t0 = time.time()
        h.force_recheck()
        time.sleep(0.01)
        while h.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            time.sleep(0.005)
        print("RECHECK %.3f %d" % (time.time() - t0, h.status().num_pieces), flush=True)
        return

    start = time.time()
    last = 0
    last_progress = 0
    last_dht = 0
    done = False
    active = False
    while time.time() - start < a.timeout:
        s = h.status()
        if time.time() - last > 0.5:
            last = time.time()
            print("STATUS %s %.4f %d %d %d" % (s.state, s.progress, s.download_payload_rate,
                                              s.upload_payload_rate, s.num_peers), flush=True)
        if not active and not s.flags & lt.torrent_flags.paused:
            active = True
            print("ACTIVE", flush=True)
        if a.progress and time.time() - last_progress >= a.progress:
            # The reader's clock may lag ours by a pipe and a scheduler: the
            # line carries the moment its counters were read.
            last_progress = time.time()
            print("PROGRESS %.3f %d %d %d %d" % (last_progress, s.total_done, s.total_payload_download,
                                                 s.total_payload_upload, s.num_peers), flush=True)
        if a.dht_bootstrap and time.time() - last_dht > 3 and time.time() - start < 120:
            # The first announce may come before the DHT has joined: repeat.
            last_dht = time.time()
            h.force_dht_announce()
        if s.is_seeding and not done:
            done = True
            print("DONE %.3f" % (time.time() - start), flush=True)
            if not a.keep:
                return
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.torrent_error_alert):
                print("ERROR %s" % alert.message(), flush=True)
        time.sleep(0.02)
    print("TIMEOUT", flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
