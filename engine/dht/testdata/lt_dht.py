# Drives a libtorrent DHT node for interop_test.go. It is bootstrapped only
# to the node given on the command line and bound to 127.0.0.1, so it can
# reach nothing else. Commands on stdin, one JSON event per line on stdout.
import json, select, sys, tempfile, time
import libtorrent as lt

ours = sys.argv[1]
ses = lt.session({
    'enable_dht': True,
    'dht_bootstrap_nodes': ours,
    'listen_interfaces': '127.0.0.1:0',
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'dht_restrict_routing_ips': False,
    'dht_restrict_search_ips': False,
    'alert_mask': lt.alert.category_t.dht_notification | lt.alert.category_t.dht_log_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
})

def out(**kw):
    print(json.dumps(kw), flush=True)

out(event='ready', port=ses.listen_port())
deadline = time.time() + float(sys.argv[2] if len(sys.argv) > 2 else 60)
while time.time() < deadline:
    r, _, _ = select.select([sys.stdin], [], [], 0.05)
    if r:
        cmd = sys.stdin.readline().split()
        if not cmd or cmd[0] == 'quit':
            break
        if cmd[0] == 'announce':
            # session.dht_announce cannot be called from Python in 2.0.8
            # (its flags type is not exposed), so add the infohash as a
            # magnet and make the torrent announce itself on the DHT, with
            # the session's listen port.
            p = lt.add_torrent_params()
            p.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(cmd[1])))
            p.save_path = tempfile.mkdtemp()
            p.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
            h = ses.add_torrent(p)
            h.force_dht_announce()
        elif cmd[0] == 'get_peers':
            ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(cmd[1])))
        elif cmd[0] == 'stats':
            ses.post_dht_stats()
    for a in ses.pop_alerts():
        if isinstance(a, lt.dht_get_peers_reply_alert):
            out(event='peers', ih=str(a.info_hash), peers=['%s:%d' % p for p in a.peers()])
        elif isinstance(a, lt.dht_announce_alert):
            out(event='announced', ih=str(a.info_hash), ip=str(a.ip), port=a.port)
        elif isinstance(a, lt.dht_stats_alert):
            out(event='stats', nodes=sum(b['num_nodes'] for b in a.routing_table))
        elif isinstance(a, lt.dht_bootstrap_alert):
            out(event='bootstrap')
        elif isinstance(a, (lt.dht_log_alert, lt.dht_pkt_alert)):
            out(event='log', msg=a.message())
        elif a.category() & lt.alert.category_t.error_notification:
            out(event='error', msg=a.message())
