package storage

import (
	"fmt"
	"slices"
	"time"
)

// DeleteOldSegments applies retention and returns how many segments it
// deleted. From the oldest on, a segment is deleted while its newest
// timestamp is more than RetentionMs before now, or while the log without it
// is still at least RetentionBytes large, or while it lies wholly below the
// log start offset. The active segment is never deleted (Kafka would roll an
// expired active segment first; here it waits for the next roll), and a
// segment without timestamps is kept by time.
//
// The new log start offset, the base offset of the first kept segment, is
// checkpointed before any file is removed, so a crash in between leaves a
// state recovery completes.
func (l *Log) DeleteOldSegments(now time.Time) (deleted int, err error) {
	if err := l.writable(); err != nil {
		return 0, err
	}
	count := l.deletableSegments(now.UnixMilli())
	if count == 0 {
		return 0, nil
	}
	previousStart := l.logStartOffset
	l.logStartOffset = max(l.logStartOffset, l.segments[count].baseOffset)
	if err := l.writeLogStart(); err != nil {
		l.logStartOffset = previousStart
		return 0, err
	}
	// A full disk may fail the epoch checkpoint; the deletion goes on, since
	// recovery drops the stale entries below the durable log start anyway.
	var epochErr error
	if l.epochs.truncateFromStart(l.logStartOffset) {
		if epochErr = l.saveEpochs(); l.failed != nil {
			return 0, epochErr
		}
	}
	for _, s := range l.segments[:count] {
		if err := l.removeSegmentFiles(s); err != nil {
			return 0, err
		}
	}
	l.segments = slices.Delete(l.segments, 0, count)
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return count, l.fail(fmt.Errorf("syncing directory: %w", err))
	}
	l.recoveryPoint = max(l.recoveryPoint, l.logStartOffset)
	return count, epochErr
}

// deletableSegments counts the leading segments that retention removes.
func (l *Log) deletableSegments(nowMs int64) int {
	total := l.Size()
	n := 0
	for n+1 < len(l.segments) {
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
	return n
}
