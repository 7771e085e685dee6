package storage

import (
	"fmt"
	"math"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
)

// TruncateTo removes every batch that holds an offset at or after offset, as
// a follower does when its log diverged from the leader's. Kafka's rule
// applies: the batch that holds offset goes entirely, so the log end offset
// may end up below offset. The new log end offset is the end of the last
// remaining batch, or the base offset of the last remaining segment if that
// is higher (when the truncation empties a segment that follows a gap);
// segments starting after offset are deleted. An offset at or after the log end changes
// nothing; one below the log start empties the log and restarts it at offset
// (TruncateFullyAndStartAt). The truncation is durable when TruncateTo
// returns.
//
// Ordering: the recovery point checkpoint is lowered first (to the base of
// the segment that is cut), so recovery
// re-validates the affected range whatever a crash interrupts; later segments
// are removed newest first and the directory synced; then the segment holding
// offset is truncated and synced; then the leader epochs are truncated.
func (l *Log) TruncateTo(offset int64, now time.Time) error {
	if err := l.writable(); err != nil {
		return err
	}
	if l.syncing != nil {
		return ErrSyncInFlight
	}
	if offset < 0 {
		return fmt.Errorf("%w: truncate to negative offset %d", ErrOffsetOutOfRange, offset)
	}
	if offset >= l.LogEndOffset() {
		return nil
	}
	if offset < l.logStartOffset {
		return l.TruncateFullyAndStartAt(offset, now)
	}
	keep := len(l.segments)
	for keep > 1 && l.segments[keep-1].baseOffset > offset {
		keep--
	}
	// The log may end below offset afterwards (the batch holding offset goes
	// whole, and gaps), but never below the base of the segment it cuts.
	lowered := l.segments[keep-1].baseOffset
	if l.recoveryPointCheckpointed > lowered {
		if err := l.writeRecoveryPoint(lowered); err != nil {
			return err
		}
	}
	l.recoveryPoint = min(l.recoveryPoint, lowered)
	for i := len(l.segments) - 1; i >= keep; i-- {
		if err := l.removeSegmentFiles(l.segments[i]); err != nil {
			return err
		}
	}
	clear(l.segments[keep:])
	l.segments = l.segments[:keep]
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("syncing directory: %w", err))
	}
	if err := l.truncateActive(offset); err != nil {
		return err
	}
	l.unflushedRecords = 0
	l.recoveryPoint = l.LogEndOffset()
	if l.epochs.truncateFromEnd(l.LogEndOffset()) {
		return l.saveEpochs()
	}
	return nil
}

// truncateActive cuts the active segment before the batch holding offset
// and syncs it. The cut position and the new tail are read stably and
// validated before the file is touched, so a flipped bit on read cannot
// choose where the log is cut.
func (l *Log) truncateActive(offset int64) error {
	s := l.active()
	if offset >= s.nextOffset {
		// offset fell in a gap before a removed segment.
		return l.syncActive()
	}
	position, h, err := l.findBatch(s, offset, true)
	if err != nil {
		return l.fail(fmt.Errorf("finding offset %d: %w", offset, err))
	}
	s.index.truncate(s.relative(h.BaseOffset))
	if err := l.recomputeTail(s, position); err != nil {
		return l.fail(err)
	}
	if err := s.file.Truncate(position); err != nil {
		return l.fail(fmt.Errorf("truncating segment %d: %w", s.baseOffset, err))
	}
	s.syncedBytes = -1 // the size changed: force a sync
	return l.syncActive()
}

// recomputeTail sets the end offset, size and max timestamp of s for a new
// size endBytes, from the index and the batches after its last entry, each
// validated as recovery does.
func (l *Log) recomputeTail(s *segment, endBytes int64) error {
	s.sizeBytes = s.index.lastPosition()
	s.nextOffset = s.baseOffset
	if n := len(s.index.offsets); n > 0 {
		s.nextOffset += int64(s.index.offsets[n-1].relativeOffset)
	}
	s.maxTimestamp = s.index.lastTimestamp()
	s.indexStale = true
	clean, err := l.scanSegment(s, endBytes, false)
	if err == nil && !clean {
		err = corruptLog(s, s.sizeBytes, fmt.Errorf("%w: invalid batch before the cut", record.ErrCorrupt))
	}
	if err != nil {
		return fmt.Errorf("recomputing segment %d: %w", s.baseOffset, err)
	}
	assert(s.sizeBytes == endBytes, "recomputed tail overshoots")
	return nil
}

func (l *Log) syncActive() error {
	s := l.active()
	if err := s.sync(); err != nil {
		return l.fail(fmt.Errorf("syncing segment %d: %w", s.baseOffset, err))
	}
	return nil
}

// ForgetEpochsFrom drops the leader epochs that start at or after the log
// end: epochs a leader assigned before writing anything
// (AssignLeaderEpoch). A follower whose log diverged from its leader's
// exactly at its own end calls it, as Kafka's truncation to the log end
// does, so that its next Fetch carries the epoch of its last batch.
func (l *Log) ForgetEpochsFrom(offset int64) error {
	if err := l.writable(); err != nil {
		return err
	}
	if l.epochs.truncateFromEnd(max(offset, l.LogEndOffset())) {
		return l.saveEpochs()
	}
	return nil
}

// TruncateFullyAndStartAt deletes the whole log and restarts it, empty, at
// offset, which becomes both the log start and the log end offset. A
// follower uses it when the leader no longer has the offsets it needs. The
// leader epoch cache is cleared. The change is durable when it returns.
//
// Ordering: the new log start and the empty epoch cache are checkpointed
// first, then the segments are replaced. A crash in between leaves the old
// segments, which recovery deletes when they lie below the new start (the
// follower's case, offset >= the old log end); for an offset inside the old
// log the part at or after it may survive such a crash.
func (l *Log) TruncateFullyAndStartAt(offset int64, now time.Time) error {
	if err := l.writable(); err != nil {
		return err
	}
	if l.syncing != nil {
		return ErrSyncInFlight
	}
	if offset < 0 || offset == math.MaxInt64 {
		return fmt.Errorf("%w: cannot start at offset %d", ErrOffsetOutOfRange, offset)
	}
	// The new log start goes first: a crash before the segments are replaced
	// then makes recovery drop the segments below it.
	previousStart := l.logStartOffset
	l.logStartOffset = offset
	if err := l.writeLogStart(); err != nil {
		l.logStartOffset = previousStart
		return err
	}
	// The epochs go next, so that no crash leaves the new empty log with
	// the old log's epochs.
	l.epochs.entries = l.epochs.entries[:0]
	if err := l.saveEpochs(); err != nil {
		return err
	}
	if err := l.replaceAllSegments(offset, now.UnixMilli()); err != nil {
		return err
	}
	l.unflushedRecords = 0
	l.recoveryPoint = offset
	return l.writeRecoveryPoint(offset)
}
