package storage

import (
	"errors"
	"fmt"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/planted"
)

// ErrSyncInFlight is returned by the truncating operations while a SyncJob
// is in flight: truncating below the job's bound would make the durable
// end it reports untrue. The caller retries after FinishSync.
var ErrSyncInFlight = errors.New("storage: a sync is in flight")

// SyncJob is one group-commit fsync of the active segment, run off the
// node's loop (core.IO). Its durable bound is fixed when it starts: the
// segment's size and end offset at that moment. Batches appended while it
// runs ride the next job.
//
// The log keeps at most one job in flight. While one is, the log never
// truncates the segment below the job's bound (TruncateTo asserts it), so
// the bound the job reports stays true.
type SyncJob struct {
	log        *Log
	segment    *segment
	file       core.File
	sizeBytes  int64 // the file size when the job started
	nextOffset int64 // the offset after the last batch within sizeBytes
}

// Run performs the fsync. It touches only the file, so it may run on
// another goroutine. It asks for no more than the job's bound
// (core.SyncPrefix): the simulated disk then makes exactly that durable, so
// a log that claimed appends made during the fsync would be caught.
func (j *SyncJob) Run() error { return core.SyncPrefix(j.file, j.sizeBytes) }

// EndOffset is the offset below which the log is durable once the job
// succeeds.
func (j *SyncJob) EndOffset() int64 { return j.nextOffset }

// SyncInFlight reports whether a SyncJob has started and not finished.
func (l *Log) SyncInFlight() bool { return l.syncing != nil }

// DurableEndOffset is the offset below which every batch is durable: the
// high watermark of a durable single replica. It equals RecoveryPoint.
func (l *Log) DurableEndOffset() int64 { return l.recoveryPoint }

// StartSync starts a group-commit sync of everything appended so far, or
// returns nil when there is nothing to sync, a job is already in flight, or
// the log may not be written. The caller runs job.Run (off the loop) and
// then calls FinishSync with its result, on the loop.
func (l *Log) StartSync() *SyncJob {
	if l.syncing != nil || l.writable() != nil {
		return nil
	}
	s := l.active()
	// A segment synced to its end may still end above the durable end: a
	// roll that synced it and then failed (its index files on a full disk)
	// left the recovery point behind. The job then costs an fsync with
	// nothing to write, and moves the durable end (sim seed 1500389).
	if s.nextOffset <= l.recoveryPoint {
		return nil
	}
	assert(s.sizeBytes > 0, "unsynced data in an empty segment")
	l.syncing = &SyncJob{log: l, segment: s, file: s.file, sizeBytes: s.sizeBytes, nextOffset: s.nextOffset}
	return l.syncing
}

// FinishSync records the result of job. On success the durable end offset
// advances to the job's end (unless a roll or an inline Sync already moved
// it further), and the recovery point checkpoint is written if its segment
// changed. A failed fsync fails the log (ErrLogFailed): the unsynced range
// is unknown, so the node must stop and recover from what the disk holds.
// A job of a closed log, or of a segment that retention deleted meanwhile,
// is ignored: nothing depends on its durability any more.
func (l *Log) FinishSync(job *SyncJob, err error) error {
	assert(job != nil && job.log == l, "FinishSync of another log's job")
	if l.closed {
		return nil
	}
	assert(l.syncing == job, "FinishSync of a job that is not in flight")
	l.syncing = nil
	if !l.holds(job.segment) {
		return nil
	}
	if planted.Is("ignore-failed-fsync") {
		err = nil
	}
	if err != nil {
		return l.fail(fmt.Errorf("syncing segment %d: %w", job.segment.baseOffset, err))
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrLogFailed, l.failed)
	}
	s := job.segment
	if planted.Is("claim-late-appends") && s == l.active() {
		job.sizeBytes, job.nextOffset = s.sizeBytes, s.nextOffset
	}
	if job.sizeBytes > s.syncedBytes {
		s.syncedBytes = job.sizeBytes
	}
	if job.nextOffset > l.recoveryPoint {
		// Every segment before s is durable: roll syncs a segment before it
		// starts the next one.
		l.recoveryPoint = job.nextOffset
		if s == l.active() && s.nextOffset == job.nextOffset {
			l.unflushedRecords = 0
		}
	}
	return l.checkpointRecoveryPoint()
}

// MarkFailed fails the log because of err, found outside it (corruption
// reported by a read or the scrubber): nothing may write to it again, and
// Close will not sync or checkpoint it.
func (l *Log) MarkFailed(err error) {
	l.fail(err)
}

// holds reports whether s is still one of the log's segments.
func (l *Log) holds(s *segment) bool {
	for _, other := range l.segments {
		if other == s {
			return true
		}
	}
	return false
}
