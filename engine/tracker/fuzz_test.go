package tracker

import (
	"encoding/binary"
	"errors"
	"testing"

	"gotorrentserver/metainfo"
)

// checkPeers asserts what any parser output must satisfy.
func checkPeers(t *testing.T, r AnnounceResponse) {
	t.Helper()
	if len(r.Peers) > maxPeersPerReply {
		t.Fatalf("%d peers exceeds the bound", len(r.Peers))
	}
	seen := map[string]bool{}
	for _, p := range r.Peers {
		if p.Port() == 0 || !p.Addr().IsValid() || p.Addr().IsUnspecified() || p.Addr().Is4In6() {
			t.Fatalf("unusable peer %v returned", p)
		}
		if seen[p.String()] {
			t.Fatalf("duplicate peer %v", p)
		}
		seen[p.String()] = true
	}
	if r.Seeders < -1 || r.Leechers < -1 || r.Interval < 0 || r.MinInterval < 0 {
		t.Fatalf("negative field in %+v", r)
	}
	if len(r.Warning) > maxReasonLen*3 || len(r.TrackerID) > maxReasonLen*3 {
		t.Fatal("unbounded text kept")
	}
}

func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte("d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseHTTPResponse(data, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrTrackerFailure) {
				t.Fatalf("unclassified error %v", err)
			}
			if te, ok := errors.AsType[*TrackerError](err); ok && len(te.Reason) > maxReasonLen*3 {
				t.Fatal("unbounded failure reason")
			}
			return
		}
		checkPeers(t, r)
	})
}

func FuzzParseUDPResponse(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x07\x08\x00\x00\x00\x01\x00\x00\x00\x02\x7f\x00\x00\x01\x1a\xe1"), false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		// Use the packet's own transaction id so the body is exercised.
		var txid uint32
		if len(data) >= 8 {
			txid = binary.BigEndian.Uint32(data[4:8])
		}
		r, match, err := parseUDPAnnounceReply(data, txid, v6)
		if !match {
			if err != nil || len(data) >= 8 && binary.BigEndian.Uint32(data) == actionAnnounce {
				t.Fatalf("unmatched packet: err %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrTrackerFailure) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		checkPeers(t, r)
		size := metainfo.CompactPeerV4Len
		if v6 {
			size = metainfo.CompactPeerV6Len
		}
		if (len(data)-udpAnnounceHdrLen)%size != 0 {
			t.Fatalf("accepted a peer list of %d bytes", len(data)-udpAnnounceHdrLen)
		}
		_, _, _ = parseConnectReply(data, txid)
	})
}
