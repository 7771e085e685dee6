package storage

import (
	"fmt"
	"math"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
)

// AppendReplicated stores batches whose offsets a leader already assigned,
// as a follower does: batches is a concatenation of whole batches, as in a
// fetch response. Every batch must be valid, its base offset must be at or
// after the previous batch's next offset (the first at or after the log end
// offset; gaps are allowed, as after compaction), and leader epochs must not
// decrease. Batches of a newer epoch update the leader epoch cache.
//
// Bad input is rejected whole with ErrCorruptBatch, ErrBatchTooLarge or
// ErrStaleEpoch before anything is written. On a disk error a prefix of the
// batches may have been appended; LogEndOffset tells how far. (When a batch
// after an offset gap starts a new segment, the log end offset moves to that
// batch's base offset with the roll, even if the write then fails: the
// offsets in the gap do not exist.) It returns the
// last offset of the last batch, or LogEndOffset()-1 for empty input.
func (l *Log) AppendReplicated(batches []byte, now time.Time) (lastOffset int64, err error) {
	if err := l.writable(); err != nil {
		return 0, err
	}
	if err := l.checkReplicated(batches); err != nil {
		return 0, err
	}
	nowMs := now.UnixMilli()
	for position := 0; position < len(batches); {
		size, err := record.BatchSize(batches[position:])
		assert(err == nil, "checked batch became invalid")
		batch := batches[position : position+size]
		h, err := record.ParseHeader(batch)
		assert(err == nil, "checked batch became invalid")
		if err := l.appendBatch(batch, &h, nowMs); err != nil {
			return 0, err
		}
		position += size
	}
	return l.LogEndOffset() - 1, nil
}

// checkReplicated validates replicated batches without changing anything.
func (l *Log) checkReplicated(batches []byte) error {
	nextOffset := l.LogEndOffset()
	epoch := l.epochs.latestEpoch()
	for position := 0; position < len(batches); {
		size, err := record.BatchSize(batches[position:])
		if err != nil {
			return fmt.Errorf("%w: at byte %d: %w", ErrCorruptBatch, position, err)
		}
		if size > len(batches)-position {
			return fmt.Errorf("%w: at byte %d: batch of %d bytes, %d left", ErrCorruptBatch, position, size, len(batches)-position)
		}
		h, err := l.checkBatch(batches[position : position+size])
		if err != nil {
			return fmt.Errorf("at byte %d: %w", position, err)
		}
		if h.BaseOffset < nextOffset {
			return fmt.Errorf("%w: at byte %d: base offset %d is below the expected %d", ErrCorruptBatch, position, h.BaseOffset, nextOffset)
		}
		if h.BaseOffset > math.MaxInt64-1-int64(h.LastOffsetDelta) {
			return fmt.Errorf("%w: at byte %d: offsets overflow", ErrCorruptBatch, position)
		}
		if h.PartitionLeaderEpoch < epoch {
			return fmt.Errorf("%w: at byte %d: epoch %d after epoch %d", ErrStaleEpoch, position, h.PartitionLeaderEpoch, epoch)
		}
		nextOffset = h.NextOffset()
		epoch = h.PartitionLeaderEpoch
		position += size
	}
	return nil
}
