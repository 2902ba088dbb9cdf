package ext

import (
	"fmt"
	"strconv"

	"gotorrentserver/metainfo"
)

const (
	// MetadataPieceLen is the BEP 9 piece size; only the last piece of the
	// info dict may be shorter.
	MetadataPieceLen = 16 << 10
	// MaxMetadataSize bounds the info dict we fetch or accept from a
	// handshake's metadata_size. 8 MiB holds over 400,000 piece hashes,
	// more than any real torrent, while capping what a lying peer can make
	// us buffer per magnet.
	MaxMetadataSize = 8 << 20
	// maxMetadataPieces is how many pieces MaxMetadataSize spans.
	maxMetadataPieces = MaxMetadataSize / MetadataPieceLen
	// maxMetadataDict bounds the dict in front of the data. Real ones are
	// about 50 bytes; the slack tolerates clients adding their own keys.
	maxMetadataDict = 1024
)

// metadataDictLimits: the dict is flat, but unknown keys may nest a little.
var metadataDictLimits = metainfo.Limits{MaxSize: maxMetadataDict, MaxDepth: 4}

// MetadataType is a ut_metadata msg_type.
type MetadataType int

// The msg_type values of BEP 9.
const (
	MetadataRequest MetadataType = 0
	MetadataData    MetadataType = 1
	MetadataReject  MetadataType = 2
)

// MetadataMsg is one ut_metadata message. TotalSize and Data are set only
// for MetadataData.
type MetadataMsg struct {
	Type      MetadataType
	Piece     int
	TotalSize int64
	Data      []byte
}

// NumMetadataPieces is how many BEP 9 pieces an info dict of size bytes has.
func NumMetadataPieces(size int64) int {
	return int((size + MetadataPieceLen - 1) / MetadataPieceLen)
}

// metadataPieceLen is the exact length of piece i of an info dict of size
// bytes, or 0 when i is outside it.
func metadataPieceLen(size int64, i int) int {
	if i < 0 || i >= NumMetadataPieces(size) {
		return 0
	}
	return int(min(MetadataPieceLen, size-int64(i)*MetadataPieceLen))
}

// ParseMetadataMsg decodes the payload of a ut_metadata extended message:
// a bencoded dict, followed by the piece bytes for MetadataData. It checks
// bounds only: piece below the MaxMetadataSize range, total_size in
// 1..MaxMetadataSize, data of 1..MetadataPieceLen bytes, no bytes after a
// request or reject. Whether a data piece has the right length for its
// total_size is the MetadataFetcher's business, since that is what
// identifies a lying peer. An unknown msg_type is ErrUnknownMetadataType,
// which BEP 9 says to ignore. Data aliases payload: copy it to keep it.
// Safe from any goroutine.
func ParseMetadataMsg(payload []byte) (MetadataMsg, error) {
	var m MetadataMsg
	end, err := dictPrefixLen(payload, maxMetadataDict, metadataDictLimits.MaxDepth)
	if err != nil {
		return m, err
	}
	v, err := metainfo.DecodeLimits(payload[:end], metadataDictLimits)
	if err != nil {
		return m, fmt.Errorf("%w: %w", ErrBadMetadataMsg, err)
	}
	d, _ := v.(map[string]any) // dictPrefixLen checked the leading 'd'
	typ, ok := d["msg_type"].(int64)
	if !ok {
		return m, fmt.Errorf("%w: msg_type missing or not an integer", ErrBadMetadataMsg)
	}
	piece, ok := d["piece"].(int64)
	if !ok || piece < 0 || piece >= maxMetadataPieces {
		return m, fmt.Errorf("%w: piece missing or out of range", ErrBadMetadataMsg)
	}
	m.Type, m.Piece = MetadataType(typ), int(piece)
	rest := payload[end:]
	switch m.Type {
	case MetadataRequest, MetadataReject:
		if len(rest) != 0 {
			return m, fmt.Errorf("%w: %d bytes after a msg_type %d dict", ErrBadMetadataMsg, len(rest), typ)
		}
	case MetadataData:
		total, ok := d["total_size"].(int64)
		if !ok || total <= 0 || total > MaxMetadataSize {
			return m, fmt.Errorf("%w: total_size missing or out of range", ErrBadMetadataMsg)
		}
		if len(rest) == 0 || len(rest) > MetadataPieceLen {
			return m, fmt.Errorf("%w: data of %d bytes", ErrBadMetadataMsg, len(rest))
		}
		m.TotalSize, m.Data = total, rest
	default:
		return MetadataMsg{}, fmt.Errorf("%w: %d", ErrUnknownMetadataType, typ)
	}
	return m, nil
}

// AppendMetadataMsg appends m's ut_metadata payload to dst: keys in the
// sorted order bencode requires, total_size and the data only for
// MetadataData. It encodes what it is given; the caller keeps the values
// in range (ParseMetadataMsg's bounds). Safe from any goroutine.
func AppendMetadataMsg(dst []byte, m MetadataMsg) []byte {
	dst = append(dst, "d8:msg_typei"...)
	dst = strconv.AppendInt(dst, int64(m.Type), 10)
	dst = append(dst, "e5:piecei"...)
	dst = strconv.AppendInt(dst, int64(m.Piece), 10)
	dst = append(dst, 'e')
	if m.Type == MetadataData {
		dst = append(dst, "10:total_sizei"...)
		dst = strconv.AppendInt(dst, m.TotalSize, 10)
		dst = append(dst, "ee"...)
		return append(dst, m.Data...)
	}
	return append(dst, 'e')
}
