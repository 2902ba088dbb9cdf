#!/usr/bin/python3
"""libtorrent's view of torrents, for the metainfo tests.

  lt.py info FILE...           prints one JSON object per torrent as libtorrent parses it
  lt.py create MODE SRC OUT    makes a torrent of SRC with libtorrent (MODE: hybrid, v1, v2)
"""
import json
import sys

import libtorrent as lt


def info(path):
    try:
        ti = lt.torrent_info(path)
    except Exception as e:  # libtorrent refuses it: report, the test compares
        return {"path": path, "error": str(e)}
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({
            "path": fs.file_path(i),
            "length": fs.file_size(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
        })
    return {
        "path": path,
        "infohash": str(ti.info_hashes().v1),
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "private": ti.priv(),
        "trackers": [[t.tier, t.url] for t in ti.trackers()],
        "web_seeds": [w["url"] for w in ti.web_seeds()],
        "files": files,
    }


def create(mode, src, out):
    fs = lt.file_storage()
    lt.add_files(fs, src)
    flags = {"hybrid": 0, "v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}[mode]
    ct = lt.create_torrent(fs, 0, flags=flags)
    ct.add_tracker("http://127.0.0.1:6969/announce", 0)
    ct.add_tracker("udp://127.0.0.1:6969/announce", 1)
    ct.add_url_seed("http://127.0.0.1:8000/seed/")
    import os
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(src)))
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))


if __name__ == "__main__":
    if sys.argv[1] == "info":
        for p in sys.argv[2:]:
            print(json.dumps(info(p)))
    elif sys.argv[1] == "create":
        create(*sys.argv[2:5])
