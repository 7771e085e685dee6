package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/kafkasim/kafkasim/core"
)

// rewriteChunkBytes bounds the buffer that copies a segment in recovery.
const rewriteChunkBytes = 1 << 20

// finishRecovery makes the recovered state whole and durable: a log start
// offset inside the log, at least one segment, index files for the
// immutable segments, every recovered byte synced (copied after a recorded
// failed fsync), checkpoints rewritten.
//
// On a full disk only the index and checkpoint writes need space; they may
// fail with core.ErrNoSpace without failing Open, because the old files stay
// valid: a missing or short index is rebuilt by the next recovery, an old log
// start is raised to the first segment's base again, and an old recovery
// point only makes the next recovery validate more. The epoch checkpoint is
// written before the recovery point checkpoint moves past the batches whose
// epochs it holds; if it fails, the recovery point checkpoint stays.
func (l *Log) finishRecovery(r *recovery, nowMs int64) error {
	if len(l.segments) > 0 {
		l.logStartOffset = max(l.logStartOffset, l.segments[0].baseOffset)
	}
	if len(l.segments) == 0 || l.LogEndOffset() < l.logStartOffset || (l.LogEndOffset() == l.logStartOffset && l.Size() > 0) {
		// Nothing at or after the log start survived (an interrupted
		// TruncateFullyAndStartAt): start empty there, without the
		// unreachable data below it.
		if err := l.replaceAllSegments(l.logStartOffset, nowMs); err != nil {
			return err
		}
		r.scanFrom = 0
	}
	for _, s := range l.segments[:len(l.segments)-1] {
		if err := l.ignoreNoSpace(l.writeIndexFiles(s)); err != nil {
			return err
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	// From here on this process syncs segments; until it closes the log
	// cleanly, a failed fsync may go unrecorded (a kill between the fsync
	// and RecordSyncFailure).
	if err := takeCleanShutdown(l.fsys, l.dir, r.cleanShutdown); err != nil {
		return err
	}
	syncFailed := r.report.SyncFailureRecorded
	for _, s := range l.segments[min(r.scanFrom, len(l.segments)-1):] {
		copied, err := l.makeDurable(s, r.fullScan, syncFailed, !r.cleanShutdown)
		if err != nil {
			return err
		}
		if copied {
			r.report.CopiedSegments++
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	if syncFailed {
		// The copies are durable: nothing is in doubt any more.
		if err := clearSyncFailure(l.fsys, l.dir); err != nil {
			return err
		}
	}
	// The epochs rebuilt from the validated batches go to disk before the
	// recovery point moves past those batches (CheckpointRecoveryPoint).
	l.epochs.truncateFromStart(l.logStartOffset)
	l.epochs.truncateFromEnd(l.LogEndOffset())
	if !bytes.Equal(l.epochs.encode(), r.epochsBefore) {
		l.epochsDirty = true
		if err := l.ignoreNoSpace(l.saveEpochs()); err != nil {
			return err
		}
	}
	if err := l.ignoreNoSpace(l.writeLogStart()); err != nil {
		return err
	}
	// Every byte in the log is now durable.
	l.recoveryPoint = l.LogEndOffset()
	return l.ignoreNoSpace(l.CheckpointRecoveryPoint())
}

// makeDurable makes a recovered segment durable and reports whether it
// copied it. A segment holding data after the checkpointed recovery point
// is copied into a new file rather than synced after a recorded failed
// fsync (see RecordSyncFailure): Linux then may have marked the pages clean
// although the device never got them, so reads return the data and a later
// fsync succeeds without writing it; only a fresh write is sure to reach the
// device. After an unclean shutdown (unclean) such a failure may have gone
// unrecorded, so the segment is copied too; there the copy is a precaution,
// and a full disk makes recovery sync instead (the old behaviour) rather
// than refuse to open. After a clean shutdown a sync is enough: every fsync
// of the previous process succeeded or was recorded.
func (l *Log) makeDurable(s *segment, fullScan, syncFailed, unclean bool) (bool, error) {
	if !(syncFailed || unclean) || s.sizeBytes == 0 || (!fullScan && s.nextOffset <= l.recoveryPointCheckpointed) {
		return false, s.sync()
	}
	copied, err := l.copyDurably(s)
	if err != nil && !syncFailed && errors.Is(err, core.ErrNoSpace) {
		// The partial copy is only taking space; if it cannot be removed
		// now, the next Open removes it as a stray temporary file.
		l.fsys.Remove(segmentFileName(l.dir, s.baseOffset, logSuffix) + tempSuffix)
		return false, s.sync()
	}
	return copied, err
}

// copyDurably replaces the segment file of s with a synced copy of its
// first sizeBytes bytes (temporary file, sync, rename; the caller syncs the
// directory).
func (l *Log) copyDurably(s *segment) (bool, error) {
	name := segmentFileName(l.dir, s.baseOffset, logSuffix)
	temp := name + tempSuffix
	copied, err := l.fsys.Create(temp)
	if err != nil {
		return false, err
	}
	if err := l.copySegment(s, copied); err != nil {
		copied.Close()
		return false, err
	}
	if err := copied.Close(); err != nil {
		return false, err
	}
	if err := l.fsys.Rename(temp, name); err != nil {
		return false, err
	}
	s.file.Close()
	if s.file, err = l.fsys.Open(name); err != nil {
		s.file = failedFile{}
		return false, err
	}
	s.syncedBytes = s.sizeBytes
	return true, nil
}

// copySegment copies the first sizeBytes of s into target and syncs it,
// through a buffer of at most rewriteChunkBytes. Each chunk is read until two
// reads agree: a flipped bit read here would be written to the device.
func (l *Log) copySegment(s *segment, target core.File) error {
	chunk := min(s.sizeBytes, rewriteChunkBytes)
	l.verifyBuf = slices.Grow(l.verifyBuf[:0], int(chunk))[:chunk]
	for position := int64(0); position < s.sizeBytes; position += chunk {
		part := l.verifyBuf[:min(chunk, s.sizeBytes-position)]
		if err := l.readAt(s.file, part, position, true); err != nil {
			return err
		}
		if _, err := target.Write(part); err != nil {
			return err
		}
	}
	return target.Sync()
}

// writeLogStart writes the log start offset checkpoint.
func (l *Log) writeLogStart() error {
	if err := writeCheckpoint(l.fsys, l.dir, logStartFile, encodeOffsetCheckpoint(l.logStartOffset)); err != nil {
		return l.checkpointError(err)
	}
	return nil
}

// replaceAllSegments deletes every segment, newest first, and starts an
// empty one at base. Both changes are durable when it returns.
func (l *Log) replaceAllSegments(base, nowMs int64) error {
	for i := len(l.segments) - 1; i >= 0; i-- {
		if err := l.removeSegmentFiles(l.segments[i]); err != nil {
			return err
		}
	}
	l.segments = l.segments[:0]
	file, err := l.fsys.Create(segmentFileName(l.dir, base, logSuffix))
	if err != nil {
		// The log keeps an empty placeholder segment so that it stays
		// readable (as empty) until it is reopened.
		l.segments = append(l.segments, newSegment(failedFile{}, base, nowMs))
		return l.fail(fmt.Errorf("creating segment %d: %w", base, err))
	}
	l.segments = append(l.segments, newSegment(file, base, nowMs))
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return l.fail(fmt.Errorf("syncing directory: %w", err))
	}
	return nil
}

// removeSegmentFiles closes a segment and removes its files, .log first. The
// caller syncs the directory. A missing index file is not an error.
func (l *Log) removeSegmentFiles(s *segment) error {
	s.file.Close()
	for _, suffix := range [...]string{logSuffix, indexSuffix, timeIndexSuffix} {
		err := l.fsys.Remove(segmentFileName(l.dir, s.baseOffset, suffix))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return l.fail(fmt.Errorf("removing segment %d: %w", s.baseOffset, err))
		}
	}
	return nil
}

// failedFile stands in for a segment file that could not be created. The
// log is failed, so only Close is ever called on it.
type failedFile struct{}

func (failedFile) Write([]byte) (int, error)         { return 0, ErrLogFailed }
func (failedFile) ReadAt([]byte, int64) (int, error) { return 0, ErrLogFailed }
func (failedFile) Sync() error                       { return ErrLogFailed }
func (failedFile) Truncate(int64) error              { return ErrLogFailed }
func (failedFile) Size() (int64, error)              { return 0, ErrLogFailed }
func (failedFile) Close() error                      { return nil }
