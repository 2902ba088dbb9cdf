// Package wire is the BitTorrent peer-wire codec: the BEP 3 handshake and
// messages, the BEP 6 Fast extension messages and the BEP 10 extension
// protocol handshake. It is pure: no sockets, goroutines, clocks or global
// state; bytes in, typed values out, and back. Every function may be called
// from any goroutine; values are not shared unless the caller shares them.
//
// # Framing contract with netio
//
// After the 68-byte handshake, the stream is a sequence of frames
// <uint32 big-endian length><id><payload>, where length counts id and
// payload and a zero length is a keep-alive. A reader on a gnet connection
// must, per frame:
//
//  1. Peek 4 bytes; if fewer are buffered, wait for more.
//  2. Call CheckFrame(peeked, max) with max from MaxFrame for this
//     torrent. ErrFrameTooLarge means drop the peer: never wait for, and
//     never allocate, a frame the limit forbids (a 2^31 prefix fails here,
//     before anything is allocated).
//  3. Peek the whole frame (n bytes); if fewer are buffered, wait.
//  4. Decode(frame, &dst) into a Message the connection owns. Decode
//     copies what it keeps into dst's own slices, reusing their capacity,
//     so steady-state decoding allocates nothing.
//  5. Discard n bytes.
//
// The peeked slice belongs to the event loop's buffer and is overwritten by
// later reads: never keep it, or any sub-slice of it, past step 5. Decode
// honours this; the caller must too (for example never keep dst.Block
// pointing into a peeked buffer by hand).
//
// Decode error handling: ErrUnknownMessage is returned unwrapped and means
// "skip this frame and carry on" (dst.Type then holds the raw id for
// logging); any other error means the peer violated the protocol and the
// connection should be closed.
//
// Writers append to a reused buffer: AppendMessage for the general case and
// Append* fast paths for hot messages. A piece is sent as AppendPieceHeader
// (13 bytes) followed by the block written straight from the cache, so the
// block is never copied into a message buffer.
package wire
