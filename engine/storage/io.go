package storage

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"sync"

	"gotorrentserver/metainfo"
)

// hashChunk is how much of a piece HashPiece reads per call: large enough
// that syscalls are negligible next to SHA-1, small enough that a pool of
// workers hashing 16 MiB pieces does not hold 16 MiB each.
const hashChunk = 1 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, hashChunk); return &b }}

// checkRange validates a peer-chosen (piece, begin, length) triple without
// overflowing.
func (s *Storage) checkRange(piece int, begin int64, length int) error {
	if piece < 0 || piece >= len(s.mi.Pieces) {
		return fmt.Errorf("%w: piece %d of %d", ErrRange, piece, len(s.mi.Pieces))
	}
	size := s.mi.PieceSize(piece)
	if begin < 0 || begin > size || int64(length) > size-begin {
		return fmt.Errorf("%w: piece %d bytes [%d,+%d) of %d", ErrRange, piece, begin, length, size)
	}
	return nil
}

// enter read-locks s for one I/O call; the caller must s.mu.RUnlock after a
// nil return.
func (s *Storage) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// WriteBlock writes data at offset begin of piece, creating files as needed.
// Pad-file bytes are skipped. Errors about a file are *FileError; writing
// into a file deleted or truncated while held open fails with
// ErrFileChanged rather than vanish into the orphaned inode. Safe for
// concurrent use; blocks on disk.
func (s *Storage) WriteBlock(piece int, begin int64, data []byte) error {
	if err := s.checkRange(piece, begin, len(data)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.write(piece, int64(piece)*s.mi.PieceLength+begin, data)
}

// ReadBlock fills dst from offset begin of piece. Pad-file bytes read as
// zeros. A file missing or shorter than the torrent says yields a
// *FileError wrapping ErrNotPresent; one deleted or truncated while this
// Storage held it open, ErrFileChanged. Safe for concurrent use; blocks on
// disk.
func (s *Storage) ReadBlock(piece int, begin int64, dst []byte) error {
	if err := s.checkRange(piece, begin, len(dst)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.readAt(int64(piece)*s.mi.PieceLength+begin, dst)
}

// HashPiece reads piece back from disk and reports whether its SHA-1
// matches. Missing or short files, or files changed while held open, are
// not errors: the piece is simply not there (false, nil). Safe for
// concurrent use; blocks on disk and CPU.
func (s *Storage) HashPiece(piece int) (bool, error) {
	if err := s.checkRange(piece, 0, 0); err != nil {
		return false, err
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	h := sha1.New()
	off, size := int64(piece)*s.mi.PieceLength, s.mi.PieceSize(piece)
	for done := int64(0); done < size; {
		n := min(size-done, int64(len(buf)))
		if err := s.readAt(off+done, buf[:n]); err != nil {
			if errors.Is(err, ErrNotPresent) || errors.Is(err, ErrFileChanged) {
				return false, nil
			}
			return false, err
		}
		h.Write(buf[:n])
		done += n
	}
	var sum metainfo.Hash
	h.Sum(sum[:0])
	return sum == s.mi.Pieces[piece], nil
}

// HashAndWritePiece checks a whole piece assembled in memory and writes it
// only when its SHA-1 matches, so a corrupt piece never reaches the disk and
// there is no read-back. It returns (false, nil) on a mismatch. data must be
// exactly the piece's length. Safe for concurrent use; blocks on disk and
// CPU.
func (s *Storage) HashAndWritePiece(piece int, data []byte) (bool, error) {
	if err := s.checkRange(piece, 0, len(data)); err != nil {
		return false, err
	}
	if size := s.mi.PieceSize(piece); int64(len(data)) != size {
		return false, fmt.Errorf("%w: piece %d is %d bytes, got %d", ErrRange, piece, size, len(data))
	}
	if sha1.Sum(data) != s.mi.Pieces[piece] {
		return false, nil
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	if err := s.write(piece, int64(piece)*s.mi.PieceLength, data); err != nil {
		return false, err
	}
	return true, nil
}

// readPiece reads a whole piece into dst (len == piece size). Used by the
// cache.
func (s *Storage) readPiece(piece int, dst []byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.readAt(int64(piece)*s.mi.PieceLength, dst)
}

// write stores data at torrent offset off, which lies in piece. Caller holds
// s.mu read-locked and has range-checked.
func (s *Storage) write(piece int, off int64, data []byte) error {
	// Invalidate after the bytes are on disk, even after a partial write: a
	// cache fill that read the old bytes either sees the new generation and
	// discards its copy, or inserted before this and is evicted here.
	defer func() {
		s.gen.Add(1)
		if s.cache != nil {
			s.cache.invalidate(s, piece)
		}
	}()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, sp := range s.mi.Spans(off, int64(len(data))) {
		chunk := data[:sp.Length]
		data = data[sp.Length:]
		at := off
		off += sp.Length
		if sp.Pad {
			continue
		}
		idx, fileOff := sp.File, sp.Offset
		part, err := s.inPart(sp.File)
		if err != nil {
			return err
		}
		if part && !s.parts.skip[sp.File].Load() {
			// Wanted again and not settled yet: its home is the file now.
			if err := s.unpart(sp.File); err != nil {
				return err
			}
			part = false
		}
		if part {
			if fileOff, err = s.partOffset(at); err != nil {
				return s.errPart(sp.File, err)
			}
			idx = s.parts.idx
		}
		h, err := s.files.acquire(idx, true)
		if err != nil {
			return err
		}
		_, err = h.f.WriteAt(chunk, fileOff)
		s.files.release(h)
		if err != nil {
			return s.files.fileError(idx, "write", err)
		}
	}
	if !s.emptyOK.Load() {
		return s.EnsureEmptyFiles()
	}
	return nil
}

// readAt fills p from torrent offset off. Caller holds s.mu read-locked and
// has range-checked.
func (s *Storage) readAt(off int64, p []byte) error {
	for _, sp := range s.mi.Spans(off, int64(len(p))) {
		chunk := p[:sp.Length]
		p = p[sp.Length:]
		at := off
		off += sp.Length
		if sp.Pad {
			clear(chunk)
			continue
		}
		idx, fileOff := sp.File, sp.Offset
		part, err := s.inPart(sp.File)
		if err != nil {
			return err
		}
		if part {
			if fileOff, err = s.partOffset(at); err != nil {
				return &FileError{Path: s.files.names[sp.File], Err: fmt.Errorf("%w: skipped, and no wanted piece keeps these bytes", ErrNotPresent)}
			}
			idx = s.parts.idx
		}
		h, err := s.files.acquire(idx, false)
		if err != nil {
			return err
		}
		_, err = h.f.ReadAt(chunk, fileOff)
		s.files.release(h)
		if err == io.EOF {
			return &FileError{Path: s.files.names[idx], Err: fmt.Errorf("%w: shorter than the torrent says", ErrNotPresent)}
		}
		if err != nil {
			return s.files.fileError(idx, "read", err)
		}
	}
	return nil
}
