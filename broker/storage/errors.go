package storage

import (
	"errors"
	"fmt"
)

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

	// ErrCorruption means a batch that was durably stored no longer reads
	// back valid, and repeated reads agree (so it is not a transient bit flip
	// on read): corruption at rest. Recovery reports it instead of cutting
	// the log, and changes nothing: Open fails with it, keeping every byte,
	// so that the partition can go offline (KAFKA_STORAGE_ERROR) and be
	// repaired from a replica. Read and Scrub report it for batches that
	// recovery did not read. The error is a *CorruptionError (errors.As)
	// naming the file, the byte position and the offset, except for stored
	// bytes that every one of unreadableReadsMin reads failed to read (a
	// latent sector error), which the error names by file position only.
	ErrCorruption = errors.New("storage: corruption at rest")

	// ErrClosed means the log was closed.
	ErrClosed = errors.New("storage: log is closed")

	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("storage: invalid config")
)

// CorruptionError locates corruption at rest. It matches ErrCorruption with
// errors.Is.
type CorruptionError struct {
	// File is the segment file's path in the log's FS.
	File string
	// Position is the byte position in File of the first batch that is not
	// valid where a valid batch must be.
	Position int64
	// Offset is the first offset that batch should hold: every offset below
	// it in File read back valid.
	Offset int64
	// Reason says why the bytes are corruption and not a torn write.
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("%v: %s position %d (offset %d): %s", ErrCorruption, e.File, e.Position, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorruption) hold.
func (e *CorruptionError) Unwrap() error { return ErrCorruption }
