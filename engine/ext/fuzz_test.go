package ext

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"gotorrentserver/metainfo"
)

// FuzzMetadataMsg: ParseMetadataMsg never panics; what it accepts
// re-encodes to a message that parses the same. The prefix scanner agrees
// with the strict validator on every valid dict and never reports an end
// past its input.
func FuzzMetadataMsg(f *testing.F) {
	f.Add([]byte("d8:msg_typei1e5:piecei0e10:total_sizei3ee123"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if n, err := dictPrefixLen(in, len(in), 4); err == nil && (n > len(in) || n < 2) {
			t.Fatalf("scanner end %d for %d bytes", n, len(in))
		}
		if len(in) > 0 && in[0] == 'd' && metainfo.Validate(in, metainfo.Limits{MaxDepth: 4}) == nil {
			if n, err := dictPrefixLen(in, len(in), 4); err != nil || n != len(in) {
				t.Fatalf("valid dict of %d bytes: scanner says %d, %v", len(in), n, err)
			}
		}
		m, err := ParseMetadataMsg(in)
		if err != nil {
			if !errors.Is(err, ErrBadMetadataMsg) && !errors.Is(err, ErrUnknownMetadataType) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if m.Type == MetadataData && (len(m.Data) == 0 || len(m.Data) > MetadataPieceLen) {
			t.Fatalf("data of %d bytes accepted", len(m.Data))
		}
		again, err := ParseMetadataMsg(AppendMetadataMsg(nil, m))
		if err != nil || again.Type != m.Type || again.Piece != m.Piece || again.TotalSize != m.TotalSize || !bytes.Equal(again.Data, m.Data) {
			t.Fatalf("round trip %+v -> %+v, %v", m, again, err)
		}
	})
}

// FuzzPex: ParsePex never panics, respects its bounds, and what it returns
// encodes to a message that parses the same.
func FuzzPex(f *testing.F) {
	f.Add(AppendPex(nil, Pex{Added: []PexPeer{{Addr: ap("1.2.3.4:5"), Flags: 3}}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParsePex(in)
		if err != nil {
			if !errors.Is(err, ErrBadPex) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(p.Added) > 2*MaxPexPeers || len(p.Dropped) > 2*MaxPexPeers {
			t.Fatalf("%d added, %d dropped", len(p.Added), len(p.Dropped))
		}
		again, err := ParsePex(AppendPex(nil, p))
		if err != nil || !slices.Equal(again.Added, p.Added) || !slices.Equal(again.Dropped, p.Dropped) {
			t.Fatalf("round trip %+v -> %+v, %v", p, again, err)
		}
	})
}
