package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
	"github.com/kafkasim/kafkasim/core/record"
)

// Disks, controllers and RAM occasionally return a flipped bit on read while
// the stored data is intact (the simulator's DiskOptions.ReadBitFlipProbability
// models it). Kafka's batch CRC covers the bytes from the attributes on, not
// baseOffset, batchLength, partitionLeaderEpoch, magic or the crc field. The
// two mechanisms below keep such flips from deciding anything:
//
//   - stableRead reads until three consecutive reads agree. Every read whose
//     result would truncate the log, or that is copied to a new file, goes
//     through it. Two reads are not enough: with a flip in a few percent of
//     the reads (the simulator's rate), two reads of a 61-byte header flip
//     the same bit once in some hundred thousand tries.
//   - checkStoredBatch accepts a batch only when three reads of its header
//     (twice on its own, once with the batch) agree and the CRC matches, so
//     every field of an accepted batch was confirmed by three reads or by
//     the CRC. Two reads would not do: one read in twenty flipping a bit of
//     a 200-byte batch, two reads flip the same header bit once in a million
//     batches, and the simulator scans millions.

// stableMatchesMin is how many reads must repeat the first read of a run of
// identical reads before stableRead trusts it; stableReadsMax bounds the
// reads of the same bytes while looking for such a run.
const (
	stableMatchesMin = 2
	stableReadsMax   = 12
)

// unreadableReadsMin is how many reads of the same bytes in a row must
// fail with core.ErrIO before recovery, the scrubber or a confirming read
// calls the bytes unreadable at rest (a latent sector error: damage, like
// corruption) rather than a passing device error. Damage takes one
// partition offline; a device error that passes must not.
const unreadableReadsMin = 8

// readAtRetried reads p at off, reading again after a failed read: a read
// that fails unreadableReadsMin times in a row returns an error that wraps
// ErrCorruption. Other errors (io.EOF past the end) are returned as they
// are.
func readAtRetried(file core.File, p []byte, off int64) error {
	var err error
	for range unreadableReadsMin {
		if _, err = file.ReadAt(p, off); err == nil || !errors.Is(err, core.ErrIO) {
			return err
		}
	}
	return fmt.Errorf("%w: %d bytes at position %d unreadable after %d reads: %w", ErrCorruption, len(p), off, unreadableReadsMin, err)
}

// errUnstableRead means repeated reads of the same bytes kept disagreeing.
// Nothing was changed on disk because of them; a later attempt may succeed.
var errUnstableRead = fmt.Errorf("%w: repeated reads of the same bytes disagree", ErrCorruptLog)

// stableRead fills p with the bytes at off once stableMatchesMin+1
// consecutive reads agree.
// spare is scratch space of at least len(p) bytes. Read errors, including
// io.EOF for bytes past the end, are returned as they are, except that
// bytes no read can read wrap ErrCorruption (readAtRetried).
func stableRead(file core.File, p, spare []byte, off int64) error {
	assert(len(spare) >= len(p), "stableRead spare buffer too small")
	spare = spare[:len(p)]
	if err := readAtRetried(file, p, off); err != nil {
		return err
	}
	matches := 0
	for range stableReadsMax - 1 {
		if err := readAtRetried(file, spare, off); err != nil {
			return err
		}
		if !bytes.Equal(p, spare) {
			copy(p, spare)
			matches = 0
			continue
		}
		if matches++; matches == stableMatchesMin {
			return nil
		}
	}
	return fmt.Errorf("%w: %d bytes at position %d", errUnstableRead, len(p), off)
}

// readAt reads p at off, with stableRead when stable is set.
func (l *Log) readAt(file core.File, p []byte, off int64, stable bool) error {
	if !stable {
		return readAtRetried(file, p, off)
	}
	l.spareBuf = slices.Grow(l.spareBuf[:0], len(p))[:len(p)]
	return stableRead(file, p, l.spareBuf, off)
}

// confirmBatch checks the batch at s.sizeBytes for recovery. A batch that
// looks invalid is checked again on bytes that read the same twice, so that
// only a stably invalid batch (a torn tail, real corruption) is reported
// invalid and cuts the log. err is for failed or unstable reads.
func (l *Log) confirmBatch(s *segment, fileBytes int64) (record.Header, bool, error) {
	h, valid, err := l.checkStoredBatch(s, fileBytes, false)
	if err != nil || valid {
		return h, valid, err
	}
	return l.checkStoredBatch(s, fileBytes, true)
}

// checkStoredBatch checks the batch at s.sizeBytes: a plausible header that
// fits in the file, offsets that follow the segment's, a correct CRC, and a
// header that reads the same twice on its own and with the batch. With
// stable, each read is a stable read. err is only for failed or unstable
// reads.
func (l *Log) checkStoredBatch(s *segment, fileBytes int64, stable bool) (record.Header, bool, error) {
	position := s.sizeBytes
	h, err := l.readHeaderAt(s, position, fileBytes, stable)
	if err != nil {
		return h, false, dataError(err)
	}
	if !stable {
		if err := readAtRetried(s.file, l.headerAgain[:], position); err != nil {
			return h, false, dataError(err)
		}
		if l.headerAgain != l.header {
			return h, false, nil
		}
	}
	if h.BaseOffset < s.nextOffset || !s.fits(h.LastOffset()) || position+int64(h.TotalBytes()) > segmentBytesLimit {
		return h, false, nil
	}
	size := h.TotalBytes()
	l.verifyBuf = slices.Grow(l.verifyBuf[:0], size)[:size]
	if err := l.readAt(s.file, l.verifyBuf, position, stable); err != nil {
		return h, false, dataError(err)
	}
	stored, err := record.Validate(l.verifyBuf)
	if planted.Is("recovery-skips-crc") {
		stored, err = record.ParseHeader(l.verifyBuf)
	}
	switch {
	case err != nil:
		return h, false, nil
	case stored != h && stable:
		// Two stable reads of the same header disagree: too unlikely to be
		// flips, but never a reason to cut the log.
		return h, false, fmt.Errorf("%w: header at position %d", errUnstableRead, position)
	case stored != h:
		return h, false, nil
	}
	return h, true, nil
}

// readHeaderAt reads and parses the header at position of s, which must end
// by endBytes, with a stable read if asked.
func (l *Log) readHeaderAt(s *segment, position, endBytes int64, stable bool) (record.Header, error) {
	if !stable {
		return s.readHeader(position, endBytes, &l.header)
	}
	if endBytes-position < record.HeaderBytes {
		return s.readHeader(position, endBytes, &l.header) // reads nothing
	}
	if err := l.readAt(s.file, l.header[:], position, true); err != nil {
		return record.Header{}, err
	}
	return s.parseHeader(position, endBytes, &l.header)
}

// headerWalk is the result of walking the batch headers of a segment.
type headerWalk struct {
	position int64
	header   record.Header
	found    bool
}

// walkGoal says which batch walkHeaders looks for: the first whose last
// offset is at least offset or, byTimestamp, the first whose max timestamp
// is at least timestamp and whose last offset is at least offset.
type walkGoal struct {
	offset      int64
	timestamp   int64
	byTimestamp bool
}

func (g *walkGoal) reached(h *record.Header) bool {
	return h.LastOffset() >= g.offset && (!g.byTimestamp || h.MaxTimestamp >= g.timestamp)
}

// walkHeaders reads the batch headers of s from the index entry at or before
// relativeOffset until one reaches goal. Every header must be consistent
// with what the log knows, or the walk fails with ErrCorruptLog rather than
// return a wrong batch: a header at an index entry has the entry's offset,
// offsets strictly increase and stay inside the segment, and the last batch
// ends at the segment's end offset. found is false at the segment's end.
func (l *Log) walkHeaders(s *segment, relativeOffset uint32, goal *walkGoal) (headerWalk, error) {
	entryOffset, entryPosition := s.index.lookupEntry(relativeOffset)
	position := entryPosition
	previousLast := s.baseOffset - 1
	for position < s.sizeBytes {
		h, err := s.readHeader(position, s.sizeBytes, &l.header)
		if err != nil {
			return headerWalk{}, corruptLog(s, position, err)
		}
		atEntry := position == entryPosition && entryPosition > 0
		if (atEntry && h.BaseOffset != s.baseOffset+int64(entryOffset)) || h.BaseOffset <= previousLast || h.LastOffset() >= s.nextOffset {
			return headerWalk{}, corruptLog(s, position, fmt.Errorf("%w: batch [%d, %d] after offset %d in a segment ending at %d",
				record.ErrCorrupt, h.BaseOffset, h.LastOffset(), previousLast, s.nextOffset))
		}
		if goal.reached(&h) {
			return headerWalk{position: position, header: h, found: true}, nil
		}
		previousLast = h.LastOffset()
		position += int64(h.TotalBytes())
	}
	if previousLast+1 != s.nextOffset && previousLast >= s.baseOffset {
		return headerWalk{}, corruptLog(s, position, fmt.Errorf("%w: batches end at %d, the segment at %d", record.ErrCorrupt, previousLast+1, s.nextOffset))
	}
	return headerWalk{position: position}, nil
}

// walkHeadersStable walks the headers until stableMatchesMin+1 consecutive
// walks agree, for answers that decide a truncation or that no later check
// confirms.
func (l *Log) walkHeadersStable(s *segment, relativeOffset uint32, goal *walkGoal) (headerWalk, error) {
	previous, err := l.walkHeaders(s, relativeOffset, goal)
	matches := 0
	for range stableReadsMax - 1 {
		current, currentErr := l.walkHeaders(s, relativeOffset, goal)
		if err != nil || currentErr != nil || current != previous {
			previous, err, matches = current, currentErr, 0
			continue
		}
		if matches++; matches == stableMatchesMin {
			return current, nil
		}
	}
	if err != nil {
		return headerWalk{}, err
	}
	return headerWalk{}, fmt.Errorf("%w: segment %d headers", errUnstableRead, s.baseOffset)
}

// findBatch returns the position and header of the batch of s that holds
// offset, or of the first batch after it when offset falls in a gap. The
// caller guarantees baseOffset <= offset < nextOffset. With stable, or when
// the answer lies after a gap, the walk is repeated until two walks agree:
// no later check could tell a real gap from a flipped header that hid the
// batch holding offset, and gaps are rare enough for the second walk.
func (l *Log) findBatch(s *segment, offset int64, stable bool) (int64, record.Header, error) {
	assert(offset >= s.baseOffset && offset < s.nextOffset, "findBatch outside the segment")
	goal := walkGoal{offset: offset}
	var w headerWalk
	var err error
	if !stable {
		w, err = l.walkHeaders(s, s.relative(offset), &goal)
	}
	if stable || (err == nil && w.found && w.header.BaseOffset > offset) {
		w, err = l.walkHeadersStable(s, s.relative(offset), &goal)
	}
	if err != nil {
		return 0, record.Header{}, err
	}
	if !w.found {
		return 0, record.Header{}, corruptLog(s, w.position, fmt.Errorf("%w: offset %d not found before the end", record.ErrCorrupt, offset))
	}
	return w.position, w.header, nil
}
