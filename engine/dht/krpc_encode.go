package dht

import (
	"fmt"

	"gotorrentserver/metainfo"
)

// EncodeMsg bencodes m for sending. Only the part Y selects is written,
// with the arguments m.Q needs; optional reply fields only when set. Nodes
// and Nodes6 are written in their own compact sizes, so each must hold
// contacts of its family. It fails with ErrBadPacket on an unknown Y. Safe
// from any goroutine.
func EncodeMsg(m *Msg) ([]byte, error) {
	d := map[string]any{"t": nonNil(m.T), "y": string([]byte{m.Y})}
	if m.V != nil {
		d["v"] = m.V
	}
	if m.RO {
		d["ro"] = int64(1)
	}
	switch m.Y {
	case 'q':
		d["q"] = m.Q
		d["a"] = encodeArgs(m.Q, &m.A)
	case 'r':
		r := map[string]any{"id": m.R.ID[:]}
		if len(m.R.Nodes) > 0 {
			r["nodes"] = appendCompactNodes(nil, m.R.Nodes)
		}
		if len(m.R.Nodes6) > 0 {
			r["nodes6"] = appendCompactNodes(nil, m.R.Nodes6)
		}
		if len(m.R.Values) > 0 {
			vals := make([]any, len(m.R.Values))
			for i, v := range m.R.Values {
				vals[i] = metainfo.AppendCompactPeer(nil, v)
			}
			r["values"] = vals
		}
		if len(m.R.Token) > 0 {
			r["token"] = m.R.Token
		}
		d["r"] = r
		if m.IP.IsValid() {
			d["ip"] = metainfo.AppendCompactPeer(nil, m.IP)
		}
	case 'e':
		d["e"] = []any{int64(m.E.Code), m.E.Msg}
	default:
		return nil, fmt.Errorf("%w: y=%q", ErrBadPacket, m.Y)
	}
	return metainfo.Encode(d)
}

func encodeArgs(method string, a *Args) map[string]any {
	args := map[string]any{"id": a.ID[:]}
	switch method {
	case MethodFindNode:
		args["target"] = a.Target[:]
	case MethodGetPeers:
		args["info_hash"] = a.InfoHash[:]
	case MethodAnnouncePeer:
		args["info_hash"] = a.InfoHash[:]
		args["port"] = int64(a.Port)
		args["token"] = nonNil(a.Token)
		if a.ImpliedPort {
			args["implied_port"] = int64(1)
		}
	}
	return args
}

// nonNil makes absent byte strings encode as "0:" rather than be rejected.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
