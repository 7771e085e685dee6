package storage

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// segment is one .log file with its in-memory indexes. The file may be longer
// than sizeBytes only transiently during a failed write; everything in memory
// describes the first sizeBytes bytes.
type segment struct {
	baseOffset   int64
	nextOffset   int64 // offset after the last batch; baseOffset when empty
	sizeBytes    int64
	syncedBytes  int64 // the file was last synced at this size; -1: unknown
	maxTimestamp int64 // largest batch max timestamp, or noTimestamp
	createdMs    int64 // when this process created or opened the segment
	file         core.File
	index        segmentIndex
	// indexStale is true when the index files on disk may not match index.
	indexStale bool
}

// SegmentInfo describes one segment, for tests and tools.
type SegmentInfo struct {
	BaseOffset   int64
	NextOffset   int64
	SizeBytes    int64
	MaxTimestamp int64
}

func newSegment(file core.File, base, nowMs int64) *segment {
	assert(base >= 0, "negative segment base")
	return &segment{
		baseOffset:   base,
		nextOffset:   base,
		syncedBytes:  -1, // a file found on disk may differ from its durable state
		maxTimestamp: noTimestamp,
		createdMs:    nowMs,
		file:         file,
		indexStale:   true,
	}
}

func (s *segment) info() SegmentInfo {
	return SegmentInfo{BaseOffset: s.baseOffset, NextOffset: s.nextOffset, SizeBytes: s.sizeBytes, MaxTimestamp: s.maxTimestamp}
}

// fits reports whether offsets up to lastOffset can be stored relative to
// the segment's base offset in a uint32.
func (s *segment) fits(lastOffset int64) bool {
	return lastOffset >= s.baseOffset && lastOffset-s.baseOffset <= math.MaxUint32
}

func (s *segment) relative(offset int64) uint32 {
	assert(s.fits(offset), "offset does not fit the segment")
	return uint32(offset - s.baseOffset)
}

// observe accounts for the batch with header h that is now stored at
// position sizeBytes: it updates the index, size, end offset and timestamp.
func (s *segment) observe(h *record.Header, intervalBytes int64) {
	assert(h.BaseOffset >= s.nextOffset, "batch offsets not increasing")
	bytesSinceEntry := s.sizeBytes - s.index.lastPosition()
	s.index.observe(s.relative(h.BaseOffset), s.sizeBytes, bytesSinceEntry, intervalBytes, s.maxTimestamp)
	s.sizeBytes += int64(h.TotalBytes())
	s.nextOffset = h.NextOffset()
	s.maxTimestamp = max(s.maxTimestamp, h.MaxTimestamp)
	s.indexStale = true
}

// write appends data to the file. On failure it truncates the file back to
// sizeBytes so that no partial batch stays behind; rolledBack reports whether
// that worked (if not, the file's contents past sizeBytes are unknown).
func (s *segment) write(data []byte) (rolledBack bool, err error) {
	n, err := s.file.Write(data)
	if err == nil {
		assert(n == len(data), "short write without an error")
		return true, nil
	}
	if truncateErr := s.file.Truncate(s.sizeBytes); truncateErr != nil {
		return false, fmt.Errorf("storage: write failed (%w) and truncating back failed: %v", err, truncateErr)
	}
	return true, err
}

// sync makes the file durable up to its current size.
func (s *segment) sync() error {
	if s.syncedBytes == s.sizeBytes {
		return nil
	}
	if err := s.file.Sync(); err != nil {
		return err
	}
	s.syncedBytes = s.sizeBytes
	return nil
}

// readHeader reads and parses the header of the batch at position, which
// must end by endBytes. It returns an error wrapping record.ErrTruncated or
// record.ErrCorrupt for bad data, and other errors for failed reads.
func (s *segment) readHeader(position, endBytes int64, scratch *[record.HeaderBytes]byte) (record.Header, error) {
	if endBytes-position < record.HeaderBytes {
		return record.Header{}, fmt.Errorf("%w: %d bytes left at position %d", record.ErrTruncated, endBytes-position, position)
	}
	if err := readAtRetried(s.file, scratch[:], position); err != nil {
		if errors.Is(err, io.EOF) {
			return record.Header{}, fmt.Errorf("%w: end of file at position %d", record.ErrTruncated, position)
		}
		return record.Header{}, err
	}
	return s.parseHeader(position, endBytes, scratch)
}

// parseHeader parses the header read into scratch from position and checks
// that its batch ends by endBytes.
func (s *segment) parseHeader(position, endBytes int64, scratch *[record.HeaderBytes]byte) (record.Header, error) {
	h, err := record.ParseHeader(scratch[:])
	if err != nil {
		return h, err
	}
	if int64(h.TotalBytes()) > endBytes-position {
		return h, fmt.Errorf("%w: batch of %d bytes at position %d, %d left", record.ErrTruncated, h.TotalBytes(), position, endBytes-position)
	}
	return h, nil
}

func corruptLog(s *segment, position int64, err error) error {
	if errors.Is(err, record.ErrTruncated) || errors.Is(err, record.ErrCorrupt) {
		return fmt.Errorf("%w: segment %d position %d: %w", ErrCorruptLog, s.baseOffset, position, err)
	}
	return fmt.Errorf("storage: segment %d position %d: %w", s.baseOffset, position, err)
}
