package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kafkasim/kafkasim/core/planted"
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
// stored, after their headers and CRCs are checked: a batch whose CRC does
// not match is never served. If three agreeing re-reads confirm the
// mismatch, the bytes are corrupt at rest and Read returns a
// *CorruptionError (errors.Is ErrCorruption); otherwise the read was
// transient and Read returns ErrCorruptLog, which the caller may retry.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, buf []byte) ([]byte, error) {
	return l.read(offset, maxBytes, maxOffset, true, buf)
}

// ReadWithin is Read without the progress rule: when the first batch is
// larger than maxBytes it returns no batch, without reading it. A caller
// that fills one response from several reads (the next segment, the next
// partition) uses it after its first read, so that a batch it could not
// send is never read into its buffer.
func (l *Log) ReadWithin(offset int64, maxBytes int, maxOffset int64, buf []byte) ([]byte, error) {
	return l.read(offset, maxBytes, maxOffset, false, buf)
}

// read is Read; minOneBatch selects the progress rule.
func (l *Log) read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool, buf []byte) ([]byte, error) {
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
	position, h, err := l.findBatch(s, offset, false)
	if err != nil {
		return buf, err
	}
	if h.LastOffset() >= maxOffset || (!minOneBatch && h.TotalBytes() > maxBytes) {
		return buf, nil
	}
	keepBytes := min(int64(maxBytes), s.sizeBytes-position)
	keepBytes = max(keepBytes, int64(h.TotalBytes()))
	// The start of the batch after the returned ones comes with the same
	// read, so that the last returned batch is checked against it.
	readBytes := min(keepBytes+prefixCheckBytes, s.sizeBytes-position)
	start := len(buf)
	buf = growBuffer(buf, int(readBytes))[:start+int(readBytes)]
	if err := readAtRetried(s.file, buf[start:], position); err != nil {
		return buf[:start], corruptLog(s, position, err)
	}
	keep, err := l.wholeBatches(s, position, buf[start:], int(keepBytes), &h, maxOffset)
	if err != nil {
		return buf[:start], l.readError(s, position, buf[start:], int(keepBytes), &h, maxOffset, err)
	}
	assert(keep > 0, "read kept no batch")
	return buf[:start+keep], nil
}

// growBuffer returns buf with room for n more bytes. When it must grow, it
// at least doubles: a caller that reuses its buffer (a connection's
// response frame) then reaches the size of its reads in a few steps, where
// append's factor for large slices (1.25) would take it through many large
// allocations and copies.
func growBuffer(buf []byte, n int) []byte {
	if cap(buf)-len(buf) >= n {
		return buf
	}
	grown := make([]byte, len(buf), max(len(buf)+n, 2*cap(buf)))
	copy(grown, buf)
	return grown
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

// prefixCheckBytes is how much of a batch's start holds the fields that the
// CRC does not cover and that Read checks: base offset, batch length and
// partition leader epoch.
const prefixCheckBytes = 16

// wholeBatches returns how many leading bytes of data, read at position of
// s, are whole batches within keepBytes whose last offset is below
// maxOffset: always the first batch, which the caller found as first, then
// every following batch that fits. It checks the CRC of every batch it
// keeps (a mismatch is a *crcMismatch, which Read confirms), and it
// returns no batch whose uncovered header fields contradict the log: the
// first batch must read as the walk to it did, offsets must strictly
// increase and stay inside the segment, each batch must carry the leader
// epoch the epoch cache gives its base offset, and the last batch returned
// must end where the segment ends or before the next batch's base offset,
// which data holds past keepBytes.
func (l *Log) wholeBatches(s *segment, position int64, data []byte, keepBytes int, first *record.Header, maxOffset int64) (int, error) {
	kept := 0
	previousLast := first.BaseOffset - 1
	for position+int64(kept) < s.sizeBytes {
		rest := data[kept:]
		if len(rest) < prefixCheckBytes {
			return 0, fmt.Errorf("%w: %d bytes before the segment's end", record.ErrTruncated, len(rest))
		}
		base := int64(binary.BigEndian.Uint64(rest))
		epoch := int32(binary.BigEndian.Uint32(rest[record.LengthPrefixBytes:]))
		if base <= previousLast || !l.epochs.agrees(epoch, base) {
			return 0, fmt.Errorf("%w: batch at %d epoch %d after offset %d", record.ErrCorrupt, base, epoch, previousLast)
		}
		size, err := record.BatchSize(rest)
		if err != nil {
			return 0, err
		}
		if kept+size > keepBytes {
			break
		}
		h, err := record.ParseHeader(rest[:size])
		if err != nil {
			return 0, err
		}
		if kept == 0 && h != *first {
			return 0, fmt.Errorf("%w: the first batch read differently twice", record.ErrCorrupt)
		}
		if h.LastOffset() >= s.nextOffset {
			return 0, fmt.Errorf("%w: batch ends at %d past the segment's end %d", record.ErrCorrupt, h.LastOffset(), s.nextOffset)
		}
		if kept > 0 && h.LastOffset() >= maxOffset {
			break
		}
		if record.ComputeCRC(rest[:size]) != h.CRC && !planted.Is("read-skips-crc") {
			return 0, &crcMismatch{at: kept, size: size, offset: h.BaseOffset}
		}
		kept += size
		previousLast = h.LastOffset()
	}
	if kept == 0 {
		return 0, fmt.Errorf("%w: the first batch changed while reading", record.ErrCorrupt)
	}
	if position+int64(kept) == s.sizeBytes && previousLast+1 != s.nextOffset {
		return 0, fmt.Errorf("%w: batches end at %d, the segment at %d", record.ErrCorrupt, previousLast+1, s.nextOffset)
	}
	return kept, nil
}

// crcMismatch reports the batch at byte at of a read whose CRC did not
// match.
type crcMismatch struct {
	at, size int
	offset   int64
}

func (e *crcMismatch) Error() string {
	return fmt.Sprintf("%v: crc mismatch in the batch at offset %d", record.ErrCorrupt, e.offset)
}

// readError turns a failed check of data, read at position for a Read
// that keeps at most keepBytes, into the caller's error. A CRC mismatch is
// confirmed by reading the same range again until three reads agree and
// checking it again: a mismatch that survives is corruption at rest (a
// *CorruptionError), one that does not was a flip on read (ErrCorruptLog).
// It is kept out of Read so that Read allocates nothing when nothing failed.
func (l *Log) readError(s *segment, position int64, data []byte, keepBytes int, first *record.Header, maxOffset int64, err error) error {
	var mismatch *crcMismatch
	if !errors.As(err, &mismatch) {
		return corruptLog(s, position, err)
	}
	stable := make([]byte, len(data))
	if err := stableRead(s.file, stable, make([]byte, len(data)), position); err != nil {
		return corruptLog(s, position, err)
	}
	_, err = l.wholeBatches(s, position, stable, keepBytes, first, maxOffset)
	if errors.As(err, &mismatch) {
		return l.corruption(s, position+int64(mismatch.at), mismatch.offset, mismatch.Error())
	}
	if err == nil {
		err = fmt.Errorf("%w: a crc mismatch at offset %d did not repeat", record.ErrCorrupt, mismatch.offset)
	}
	return corruptLog(s, position, err)
}

// OffsetForTimestamp finds the first batch whose max timestamp is at least
// timestamp, using the time index and then a header scan. It works at batch
// granularity: it returns the batch's base offset (or LogStartOffset if that
// is higher) and max timestamp, so a consumer seeking there may see some
// earlier records of that batch; ListOffsets uses RecordForTimestamp, which
// answers the record. ok is false if no batch qualifies. The special
// ListOffsets timestamps (-1 latest, -2 earliest) are the caller's business;
// negative timestamps are an error.
func (l *Log) OffsetForTimestamp(timestamp int64) (offset, batchTimestamp int64, ok bool, err error) {
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	if timestamp < 0 {
		return 0, 0, false, fmt.Errorf("storage: negative timestamp %d", timestamp)
	}
	_, w, ok, err := l.batchForTimestamp(timestamp, l.logStartOffset)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	return max(w.header.BaseOffset, l.logStartOffset), w.header.MaxTimestamp, true, nil
}

// TimestampMatch is the record RecordForTimestamp found.
type TimestampMatch struct {
	// Offset and Timestamp are the record's.
	Offset, Timestamp int64
	// LeaderEpoch is the partition leader epoch of the record's batch.
	LeaderEpoch int32
}

// RecordForTimestamp finds the first record, at or after LogStartOffset,
// whose timestamp is at least timestamp, as KIP-79 defines ListOffsets by
// time and Kafka's LogSegment.findOffsetByTimestamp answers it: the time
// index and a header scan find the first batch whose max timestamp
// qualifies, then that batch's records (decompressed if needed) are decoded
// to find the record. Timestamps need not increase within a batch or across
// batches; a batch whose max timestamp qualifies but whose qualifying
// records all lie before LogStartOffset is skipped. ok is false if no record
// qualifies. Negative timestamps are an error, as in OffsetForTimestamp.
func (l *Log) RecordForTimestamp(timestamp int64) (match TimestampMatch, ok bool, err error) {
	if l.closed {
		return TimestampMatch{}, false, ErrClosed
	}
	if timestamp < 0 {
		return TimestampMatch{}, false, fmt.Errorf("storage: negative timestamp %d", timestamp)
	}
	from := l.logStartOffset
	for {
		s, w, found, err := l.batchForTimestamp(timestamp, from)
		if err != nil || !found {
			return TimestampMatch{}, false, err
		}
		assert(w.header.LastOffset() >= from, "timestamp search went backwards")
		match, found, err := l.recordInBatch(s, &w, timestamp, from)
		if err != nil || found {
			return match, found, err
		}
		from = w.header.NextOffset()
	}
}

// batchForTimestamp returns the segment and walk of the first batch whose
// max timestamp is at least timestamp and whose last offset is at least
// from. ok is false if no batch qualifies.
func (l *Log) batchForTimestamp(timestamp, from int64) (*segment, headerWalk, bool, error) {
	for _, s := range l.segments {
		if s.maxTimestamp < timestamp || s.nextOffset <= from {
			continue
		}
		w, err := l.searchTimestamp(s, timestamp, from)
		if err != nil || w.found {
			return s, w, w.found, err
		}
	}
	return nil, headerWalk{}, false, nil
}

// searchTimestamp scans s for the first batch with a max timestamp at least
// timestamp and a last offset at least from, starting where the time index
// (and the offset index, for from) allows. The scan is repeated until two
// scans agree: no later check confirms its answer, and the max timestamp is
// read without its CRC.
func (l *Log) searchTimestamp(s *segment, timestamp, from int64) (headerWalk, error) {
	goal := walkGoal{offset: from, timestamp: timestamp, byTimestamp: true}
	start := s.index.lookupTime(timestamp)
	if from > s.baseOffset {
		start = max(start, s.relative(from))
	}
	return l.walkHeadersStable(s, start, &goal)
}

// errRecordFound stops the record walk of recordInBatch at its answer.
var errRecordFound = errors.New("storage: record found")

// recordInBatch decodes the batch w found in s and returns its first record
// at or after from whose timestamp is at least timestamp. The batch is read
// stably and its CRC checked: nothing later confirms the answer.
func (l *Log) recordInBatch(s *segment, w *headerWalk, timestamp, from int64) (TimestampMatch, bool, error) {
	batch := make([]byte, w.header.TotalBytes())
	if err := l.readAt(s.file, batch, w.position, true); err != nil {
		return TimestampMatch{}, false, corruptLog(s, w.position, err)
	}
	var match TimestampMatch
	var reader record.Reader
	h, err := reader.Records(batch, func(r *record.Record) error {
		if r.Offset >= from && r.Timestamp >= timestamp {
			match = TimestampMatch{Offset: r.Offset, Timestamp: r.Timestamp}
			return errRecordFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errRecordFound):
	case err != nil:
		return TimestampMatch{}, false, corruptLog(s, w.position, err)
	default:
		return TimestampMatch{}, false, nil
	}
	if h != w.header {
		return TimestampMatch{}, false, corruptLog(s, w.position, fmt.Errorf("%w: the batch header read differently twice", record.ErrCorrupt))
	}
	match.LeaderEpoch = h.PartitionLeaderEpoch
	return match, true, nil
}
