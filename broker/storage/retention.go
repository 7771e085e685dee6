package storage

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kafkasim/kafkasim/core/planted"
)

// DeleteOldSegments applies retention and returns how many segments it
// deleted. From the oldest on, a segment is deleted while its newest
// timestamp is more than RetentionMs before now, or while the log without it
// is still at least RetentionBytes large, or while it lies wholly below the
// log start offset. The active segment is never deleted (Kafka would roll an
// expired active segment first; here it waits for the next roll), and a
// segment without timestamps is kept by time.
//
// It needs no free space until the segments are gone, so that it can free a
// disk with zero bytes free: the segments are removed oldest first, the
// directory synced after each, and only then are the log start and epoch
// checkpoints written (they need a few bytes; a full disk failing them is
// not an error). Why every crash leaves a state recovery handles:
//
//   - The log start never rises above data that is still referenced: its
//     checkpoint moves only after the segments below the new start are
//     durably gone.
//   - A crash between two removals leaves a prefix of them durable (each
//     removal is synced before the next starts), never a hole in the middle
//     of the log; recovery raises the checkpointed log start to the first
//     surviving segment's base (finishRecovery), which is where this run
//     would have put it, and drops epoch entries below it.
//   - A removal that a crash undid leaves a whole synced segment below the
//     new start, which the next retention run deletes again.
func (l *Log) DeleteOldSegments(now time.Time) (deleted int, err error) {
	return l.DeleteOldSegmentsBelow(now, math.MaxInt64)
}

// DeleteOldSegmentsBelow is DeleteOldSegments that deletes only segments
// wholly below limit and counts only the bytes below limit toward
// RetentionBytes: a replicated partition passes its high watermark, so
// that retention never deletes records that are not committed yet (a
// follower may still need them, and a leader change may still make them
// the log's truth), as Kafka's retention does. Kafka counts the whole log,
// the uncommitted tail too, so a leader can delete committed records on
// the strength of a tail that its successor never had; counting only the
// committed bytes keeps the promise "the log holds at least
// RetentionBytes from its start" across leader changes and power loss, and
// the checker holds the simulator to it (sim seed 1401836).
func (l *Log) DeleteOldSegmentsBelow(now time.Time, limit int64) (deleted int, err error) {
	if err := l.writable(); err != nil {
		return 0, err
	}
	count := l.deletableSegments(now.UnixMilli(), limit)
	if count == 0 {
		return 0, nil
	}
	for deleted < count {
		if err := l.removeSegmentFiles(l.segments[0]); err != nil {
			return deleted, err
		}
		l.segments = slices.Delete(l.segments, 0, 1)
		deleted++
		l.logStartOffset = max(l.logStartOffset, l.segments[0].baseOffset)
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return deleted, l.fail(fmt.Errorf("syncing directory: %w", err))
		}
	}
	l.recoveryPoint = max(l.recoveryPoint, l.logStartOffset)
	if err := l.ignoreNoSpace(l.writeLogStart()); err != nil {
		return deleted, err
	}
	// Recovery drops the stale entries below the durable log start anyway.
	if l.epochs.truncateFromStart(l.logStartOffset) {
		l.epochsDirty = true
		if err := l.ignoreNoSpace(l.saveEpochs()); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// deletableSegments counts the leading segments that retention removes.
func (l *Log) deletableSegments(nowMs, limit int64) int {
	total := l.bytesBelow(limit)
	if planted.Is("retention-counts-uncommitted") {
		total = l.Size()
	}
	n := 0
	for n+1 < len(l.segments) && l.segments[n+1].baseOffset <= limit {
		s := l.segments[n]
		expired := l.config.RetentionMs >= 0 && s.maxTimestamp >= 0 && nowMs-s.maxTimestamp > l.config.RetentionMs
		excess := l.config.RetentionBytes >= 0 && total-s.sizeBytes >= l.config.RetentionBytes
		below := l.segments[n+1].baseOffset <= l.logStartOffset
		if !expired && !excess && !below {
			break
		}
		total -= s.sizeBytes
		n++
	}
	if planted.Is("retention-extra-segment") && n > 0 && n+1 < len(l.segments) {
		n++
	}
	return n
}

// bytesBelow bounds from below the bytes of the batches wholly below
// offset: whole segments, and in the segment holding offset the bytes
// before the last indexed batch boundary at or before it (the sparse
// index keeps this in memory, so retention reads no file).
func (l *Log) bytesBelow(offset int64) int64 {
	total := int64(0)
	for _, s := range l.segments {
		switch {
		case s.nextOffset <= offset:
			total += s.sizeBytes
		case s.baseOffset < offset:
			total += s.index.lookup(s.relative(offset))
		}
	}
	return total
}

// IncrementLogStartOffset raises the log start to offset (at most the log
// end), as a follower does to follow its leader's (Kafka's
// maybeIncrementLogStartOffset): the offsets below become unreadable at
// once, and retention deletes the segments wholly below it at its next
// run. The new start is checkpointed; a full disk leaves the old
// checkpoint, which is safe (after a crash the records below are readable
// again, and the follower raises its start once more).
func (l *Log) IncrementLogStartOffset(offset int64) error {
	if err := l.writable(); err != nil {
		return err
	}
	offset = min(offset, l.LogEndOffset())
	if offset <= l.logStartOffset {
		return nil
	}
	previous := l.logStartOffset
	l.logStartOffset = offset
	if err := l.ignoreNoSpace(l.writeLogStart()); err != nil {
		l.logStartOffset = previous
		return err
	}
	l.recoveryPoint = max(l.recoveryPoint, l.logStartOffset)
	if l.epochs.truncateFromStart(l.logStartOffset) {
		l.epochsDirty = true
	}
	return nil
}
