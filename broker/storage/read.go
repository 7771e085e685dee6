package storage

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/core/record"
)

// Read appends to buf whole batches starting with the batch that holds
// offset and returns the extended slice; pass buf[:0] to reuse a buffer.
//
// It returns batches up to maxBytes in total, but always at least one whole
// batch even if that one is larger, so that consumers make progress (Kafka's
// rule). It never returns a batch whose last offset is at or after maxOffset
// (an exclusive bound such as the high watermark; pass LogEndOffset() or
// math.MaxInt64 for everything), and never crosses into the next segment, so
// a short result does not mean the end of the log.
//
// An offset below LogStartOffset or above LogEndOffset gives
// ErrOffsetOutOfRange (as Kafka's fetch does); offset == LogEndOffset gives no
// batches. The first batch may start before offset. Batches are returned as
// stored; Read checks their headers, not their CRCs (consumers do).
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, buf []byte) ([]byte, error) {
	if l.closed {
		return buf, ErrClosed
	}
	if maxBytes < 0 {
		return buf, fmt.Errorf("storage: negative maxBytes %d", maxBytes)
	}
	if offset < l.logStartOffset || offset > l.LogEndOffset() {
		return buf, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.logStartOffset, l.LogEndOffset())
	}
	s, offset := l.segmentFor(offset)
	if s == nil || offset >= maxOffset {
		return buf, nil
	}
	position, h, err := s.findBatch(offset, &l.header)
	if err != nil {
		return buf, err
	}
	if h.LastOffset() >= maxOffset {
		return buf, nil
	}
	readBytes := min(int64(maxBytes), s.sizeBytes-position)
	readBytes = max(readBytes, int64(h.TotalBytes()))
	start := len(buf)
	buf = slices.Grow(buf, int(readBytes))[:start+int(readBytes)]
	if _, err := s.file.ReadAt(buf[start:], position); err != nil {
		return buf[:start], corruptLog(s, position, err)
	}
	keep, err := wholeBatches(buf[start:], maxOffset)
	if err != nil {
		return buf[:start], corruptLog(s, position, err)
	}
	assert(keep > 0, "read kept no batch")
	return buf[:start+keep], nil
}

// segmentFor returns the segment holding offset, or the first batch after
// it when offset lies in a gap, with the offset to look for there. It
// returns nil at the log end.
func (l *Log) segmentFor(offset int64) (*segment, int64) {
	low, high := 0, len(l.segments) // invariant: segments[:low] start <= offset
	for low < high {
		middle := int(uint(low+high) >> 1)
		if l.segments[middle].baseOffset <= offset {
			low = middle + 1
		} else {
			high = middle
		}
	}
	for i := max(low-1, 0); i < len(l.segments); i++ {
		s := l.segments[i]
		if target := max(offset, s.baseOffset); s.nextOffset > target {
			return s, target
		}
	}
	return nil, offset
}

// wholeBatches returns how many leading bytes of data are whole batches
// whose last offset is below maxOffset: always the first batch (the caller
// checked it), then every following batch that fits.
func wholeBatches(data []byte, maxOffset int64) (int, error) {
	position := 0
	nextOffset := int64(-1)
	for position < len(data) {
		rest := data[position:]
		if len(rest) < record.HeaderBytes {
			break
		}
		h, err := record.ParseHeader(rest)
		if err != nil {
			return 0, err
		}
		if h.TotalBytes() > len(rest) || (position > 0 && h.LastOffset() >= maxOffset) {
			break
		}
		if h.BaseOffset < nextOffset {
			return 0, fmt.Errorf("%w: offsets go back to %d", record.ErrCorrupt, h.BaseOffset)
		}
		nextOffset = h.NextOffset()
		position += h.TotalBytes()
	}
	if position == 0 {
		return 0, errors.New("first batch changed while reading")
	}
	return position, nil
}

// OffsetForTimestamp finds the first batch whose max timestamp is at least
// timestamp, as ListOffsets does, using the time index and then a header
// scan. It works at batch granularity: it returns the batch's base offset
// (or LogStartOffset if that is higher) and max timestamp, so a consumer
// seeking there may see some earlier records of that batch. ok is false if
// no batch qualifies. The special ListOffsets timestamps (-1 latest, -2
// earliest) are the caller's business; negative timestamps are an error.
func (l *Log) OffsetForTimestamp(timestamp int64) (offset, batchTimestamp int64, ok bool, err error) {
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	if timestamp < 0 {
		return 0, 0, false, fmt.Errorf("storage: negative timestamp %d", timestamp)
	}
	for _, s := range l.segments {
		if s.maxTimestamp < timestamp || s.nextOffset <= l.logStartOffset {
			continue
		}
		offset, batchTimestamp, ok, err := l.searchTimestamp(s, timestamp)
		if err != nil || ok {
			return offset, batchTimestamp, ok, err
		}
	}
	return 0, 0, false, nil
}

// searchTimestamp scans s for the first batch with a max timestamp at least
// timestamp, starting where the time index allows.
func (l *Log) searchTimestamp(s *segment, timestamp int64) (int64, int64, bool, error) {
	position := s.index.lookup(s.index.lookupTime(timestamp))
	for position < s.sizeBytes {
		h, err := s.readHeader(position, s.sizeBytes, &l.header)
		if err != nil {
			return 0, 0, false, corruptLog(s, position, err)
		}
		if h.MaxTimestamp >= timestamp && h.LastOffset() >= l.logStartOffset {
			return max(h.BaseOffset, l.logStartOffset), h.MaxTimestamp, true, nil
		}
		position += int64(h.TotalBytes())
	}
	return 0, 0, false, nil
}
