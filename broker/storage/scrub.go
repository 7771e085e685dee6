package storage

import "fmt"

// Recovery reads only what lies after the checkpointed recovery point (and
// the batches after each older segment's last index entry), so that startup
// stays fast. Corruption at rest below it is found when a batch is read, or
// by the scrubber: the broker calls Scrub now and then with a byte budget,
// and it validates every stored batch in turn, as recovery does (header,
// CRC, offsets increasing inside the segment, three agreeing reads before
// anything is called invalid), and also its leader epoch against the
// epoch cache, which the CRC does not cover, wrapping around at the log
// end.

// ScrubCursor is where Scrub resumes. The zero value starts at the log
// start.
type ScrubCursor struct {
	started     bool
	segmentBase int64
	position    int64
	nextOffset  int64
}

// Scrub validates stored batches from cursor on, reading about bytesMax
// bytes (at least one batch), and returns the cursor to resume from;
// wrapped is true when it reached the log end, and the returned cursor then
// starts over at the log start. A stably invalid batch gives a
// *CorruptionError (ErrCorruption); reads that keep disagreeing give
// ErrCorruptLog, and the same cursor may be retried. Nothing is changed on
// disk. A cursor whose segment was deleted or truncated meanwhile resumes
// at the next segment or at the start of its own.
//
// Scrub reads through the page cache, like every read of the log: it finds
// corruption of the device's copy only once the cached pages are evicted.
func (l *Log) Scrub(cursor ScrubCursor, bytesMax int64) (next ScrubCursor, wrapped bool, err error) {
	if l.closed {
		return cursor, false, ErrClosed
	}
	i := l.scrubSegment(&cursor)
	// A cursor from an earlier call may point inside a batch if the
	// segment was truncated and appended to meanwhile: a bad batch right at
	// it is checked again by walking the segment from its start.
	resumed := cursor.position > 0
	// rewalking is set while that walk runs: it ignores the budget until it
	// leaves the segment or finds the bad batch, or the next call would
	// start it over.
	rewalking := false
	for spentBytes := int64(0); spentBytes < max(bytesMax, 1) || rewalking; {
		s := l.segments[i]
		if cursor.position == s.sizeBytes {
			if s.sizeBytes > 0 && cursor.nextOffset != s.nextOffset && resumed {
				cursor = ScrubCursor{started: true, segmentBase: s.baseOffset, nextOffset: s.baseOffset}
				resumed, rewalking = false, true
				continue
			}
			if s.sizeBytes > 0 && cursor.nextOffset != s.nextOffset {
				return cursor, false, l.corruption(s, cursor.position, cursor.nextOffset,
					fmt.Sprintf("batches end at offset %d, the segment at %d", cursor.nextOffset, s.nextOffset))
			}
			resumed, rewalking = false, false
			if i++; i == len(l.segments) {
				return ScrubCursor{}, true, nil
			}
			cursor = ScrubCursor{started: true, segmentBase: l.segments[i].baseOffset, nextOffset: l.segments[i].baseOffset}
			continue
		}
		view := segment{baseOffset: s.baseOffset, nextOffset: cursor.nextOffset, sizeBytes: cursor.position, file: s.file}
		h, valid, err := l.confirmBatch(&view, s.sizeBytes)
		if err != nil {
			return cursor, false, err
		}
		// A leader epoch the epoch cache disagrees with, read the same
		// three times, was changed at rest: the CRC does not cover it, so
		// only the cache can tell (sim seed 80551: a follower kept such a
		// batch, undetected, below the high watermark).
		wrongEpoch := valid && !l.epochs.agrees(h.PartitionLeaderEpoch, h.BaseOffset)
		if (!valid || h.LastOffset() >= s.nextOffset || wrongEpoch) && resumed {
			cursor = ScrubCursor{started: true, segmentBase: s.baseOffset, nextOffset: s.baseOffset}
			resumed, rewalking = false, true
			continue
		}
		resumed = false
		if !valid || h.LastOffset() >= s.nextOffset {
			return cursor, false, l.corruption(s, cursor.position, cursor.nextOffset, "invalid batch found by the scrubber")
		}
		if wrongEpoch {
			return cursor, false, l.corruption(s, cursor.position, cursor.nextOffset,
				fmt.Sprintf("batch [%d, %d] carries leader epoch %d, which the epoch cache does not give it", h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch))
		}
		cursor.position += int64(h.TotalBytes())
		cursor.nextOffset = h.NextOffset()
		spentBytes += int64(h.TotalBytes())
	}
	return cursor, false, nil
}

// scrubSegment returns the index of the segment cursor points into, moving
// the cursor to the start of a segment when its own is gone or shorter.
func (l *Log) scrubSegment(cursor *ScrubCursor) int {
	for i, s := range l.segments {
		switch {
		case !cursor.started || s.baseOffset > cursor.segmentBase || (s.baseOffset == cursor.segmentBase && cursor.position > s.sizeBytes):
			*cursor = ScrubCursor{started: true, segmentBase: s.baseOffset, nextOffset: s.baseOffset}
			return i
		case s.baseOffset == cursor.segmentBase:
			return i
		}
	}
	last := len(l.segments) - 1
	*cursor = ScrubCursor{started: true, segmentBase: l.segments[last].baseOffset, nextOffset: l.segments[last].baseOffset}
	return last
}
