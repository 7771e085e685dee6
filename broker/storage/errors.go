package storage

import "errors"

// Errors returned by the log, wrapped with details; match them with errors.Is.
var (
	// ErrOffsetOutOfRange means a read asked for an offset below the log start
	// offset or above the log end offset.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")

	// ErrCorruptBatch means an appended batch is malformed (bad header, CRC,
	// length, or offsets that do not follow the log). Nothing was written.
	ErrCorruptBatch = errors.New("storage: corrupt batch")

	// ErrBatchTooLarge means an appended batch is larger than a whole segment
	// (Config.SegmentBytesMax). Nothing was written.
	ErrBatchTooLarge = errors.New("storage: batch larger than a segment")

	// ErrStaleEpoch means an append carried a leader epoch lower than the
	// latest epoch in the log. Nothing was written.
	ErrStaleEpoch = errors.New("storage: stale leader epoch")

	// ErrLogFailed means an earlier disk error left the files in an unknown
	// state. The log refuses writes; close it and open it again to recover
	// from what is on disk.
	ErrLogFailed = errors.New("storage: log failed after a disk error")

	// ErrCorruptLog means the stored data read back inconsistently, for
	// example a batch header that does not parse where the index says a batch
	// starts. It may be transient (a flipped bit on read); reopening the log
	// runs recovery.
	ErrCorruptLog = errors.New("storage: stored log is inconsistent")

	// ErrClosed means the log was closed.
	ErrClosed = errors.New("storage: log is closed")

	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("storage: invalid config")
)
