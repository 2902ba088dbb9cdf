package ext

// MetadataServer answers ut_metadata requests from an info dict we have.
// It only reads the bytes it was given, so one value may serve every
// connection of a torrent from any goroutine concurrently.
type MetadataServer struct {
	info []byte
}

// NewMetadataServer serves info, the exact info dict bytes
// (metainfo.MetaInfo.InfoBytes). info must not be modified afterwards.
func NewMetadataServer(info []byte) *MetadataServer {
	return &MetadataServer{info: info}
}

// Size is the metadata_size to put in our extension handshake. Safe from
// any goroutine.
func (s *MetadataServer) Size() int64 { return int64(len(s.info)) }

// Answer appends to dst the payload answering req: the piece's data, or a
// reject when the piece lies outside the info dict. Anything but a request
// gets no answer and dst comes back unchanged. The appended data is a copy,
// so dst may be handed to the network while info stays shared. Safe from
// any goroutine.
func (s *MetadataServer) Answer(dst []byte, req MetadataMsg) []byte {
	if req.Type != MetadataRequest {
		return dst
	}
	n := metadataPieceLen(s.Size(), req.Piece)
	if n == 0 {
		return AppendMetadataMsg(dst, MetadataMsg{Type: MetadataReject, Piece: req.Piece})
	}
	off := req.Piece * MetadataPieceLen
	return AppendMetadataMsg(dst, MetadataMsg{
		Type:      MetadataData,
		Piece:     req.Piece,
		TotalSize: s.Size(),
		Data:      s.info[off : off+n],
	})
}
