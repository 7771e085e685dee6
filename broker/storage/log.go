package storage

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// Log is one partition's segment log. Open it with Open; it is not safe for
// concurrent use.
type Log struct {
	fsys     core.FS
	dir      string
	config   Config
	segments []*segment // sorted by base offset; never empty while open

	logStartOffset int64
	// recoveryPoint is the offset below which every batch is durable.
	recoveryPoint int64
	// recoveryPointCheckpointed is the value in the checkpoint file; recovery
	// trusts the segments before the one holding it.
	recoveryPointCheckpointed int64
	// unflushedRecords counts records appended since the last sync.
	unflushedRecords int64
	epochs           epochCache
	// epochsDirty is true when the epoch checkpoint lags the cache.
	epochsDirty bool

	failed error // set after a disk error left the files in an unknown state
	// syncing is the group-commit sync in flight, or nil (see SyncJob).
	syncing *SyncJob
	closed  bool

	header [record.HeaderBytes]byte // scratch for reading batch headers
	// headerAgain holds a second read of header, to confirm it in recovery.
	headerAgain [record.HeaderBytes]byte
	indexBuf    []byte // scratch for encoding index files
	verifyBuf   []byte // scratch for validating batches in recovery
	spareBuf    []byte // scratch for the second read of stableRead
}

// LogEndOffset returns the offset the next appended batch gets.
func (l *Log) LogEndOffset() int64 { return l.active().nextOffset }

// LogStartOffset returns the first offset that may still be read.
func (l *Log) LogStartOffset() int64 { return l.logStartOffset }

// RecoveryPoint returns the offset below which all data is durable.
func (l *Log) RecoveryPoint() int64 { return l.recoveryPoint }

// Size returns the total size of the segment files in bytes.
func (l *Log) Size() int64 {
	var total int64
	for _, s := range l.segments {
		total += s.sizeBytes
	}
	return total
}

// Segments describes the segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	infos := make([]SegmentInfo, len(l.segments))
	for i, s := range l.segments {
		infos[i] = s.info()
	}
	return infos
}

// LatestEpoch returns the newest leader epoch in the log, or UndefinedEpoch.
func (l *Log) LatestEpoch() int32 { return l.epochs.latestEpoch() }

// EpochEntries returns a copy of the leader epoch cache, oldest first.
func (l *Log) EpochEntries() []EpochEntry {
	return append([]EpochEntry(nil), l.epochs.entries...)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch like Kafka's
// LeaderEpochFileCache.endOffsetFor: the largest epoch at most epoch that the
// log holds, and the offset where the epoch after it starts (the log end
// offset for the latest epoch). An unknown epoch gives (UndefinedEpoch,
// UndefinedOffset); an epoch older than all known ones gives (epoch, start
// offset of the oldest known epoch).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return l.epochs.endOffsetFor(epoch, l.LogEndOffset())
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// ActiveSegmentBaseOffset returns the base offset of the segment appends go
// to; it changes exactly when the log rolls.
func (l *Log) ActiveSegmentBaseOffset() int64 { return l.active().baseOffset }

// writable returns an error if the log may not be written.
func (l *Log) writable() error {
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrLogFailed, l.failed)
	}
	return nil
}

// fail marks the log failed because of err and returns err wrapped.
func (l *Log) fail(err error) error {
	assert(err != nil, "fail without an error")
	if l.failed == nil {
		l.failed = err
	}
	return fmt.Errorf("%w: %w", ErrLogFailed, err)
}

// Append stores batch as a leader does: it validates the batch, assigns it
// the log end offset as base offset and stamps leaderEpoch as its partition
// leader epoch, writing both into batch itself (the caller's slice is
// modified in place; neither field is covered by the CRC). It returns the
// batch's first and last offsets. now is used to roll segments by age.
//
// A bad batch returns ErrCorruptBatch, ErrBatchTooLarge or ErrStaleEpoch and
// writes nothing; a full disk returns an error wrapping core.ErrNoSpace and
// writes nothing. An error wrapping ErrLogFailed leaves the batch's fate
// unknown (for example the write succeeded but the sync that
// FlushIntervalMessages asked for failed): after the reopen it may or may not
// be in the log. Append allocates nothing in the steady state.
func (l *Log) Append(batch []byte, leaderEpoch int32, now time.Time) (baseOffset, lastOffset int64, err error) {
	if err := l.writable(); err != nil {
		return 0, 0, err
	}
	h, err := l.checkBatch(batch)
	if err != nil {
		return 0, 0, err
	}
	return l.appendLeader(batch, h, leaderEpoch, now)
}

// AppendValidated is Append for a batch whose CRC the caller has already
// checked: it returned no error from record.Validate, and was changed since
// only through the record package's setters, which keep the CRC right (or
// built by record.Recompress). A produced batch is checked once when it
// arrives (the broker must answer CORRUPT_MESSAGE before it looks at the
// producer's state); computing its CRC again here was a second pass over
// every produced byte, 3-6% of the broker's produce CPU
// (docs/performance.md, "Produce profile and the latency floor"). The
// framing is still checked: the header must parse and its length must be
// the batch's, so a caller's mistake cannot write a torn batch. Errors and
// effects are Append's.
func (l *Log) AppendValidated(batch []byte, leaderEpoch int32, now time.Time) (baseOffset, lastOffset int64, err error) {
	if err := l.writable(); err != nil {
		return 0, 0, err
	}
	h, err := l.checkFraming(batch)
	if err != nil {
		return 0, 0, err
	}
	return l.appendLeader(batch, h, leaderEpoch, now)
}

// appendLeader stores a checked batch at the log end in leaderEpoch.
func (l *Log) appendLeader(batch []byte, h record.Header, leaderEpoch int32, now time.Time) (baseOffset, lastOffset int64, err error) {
	if leaderEpoch < 0 {
		return 0, 0, fmt.Errorf("%w: leader epoch %d is negative", ErrStaleEpoch, leaderEpoch)
	}
	if latest := l.epochs.latestEpoch(); leaderEpoch < latest {
		return 0, 0, fmt.Errorf("%w: epoch %d, log is at epoch %d", ErrStaleEpoch, leaderEpoch, latest)
	}
	base := l.LogEndOffset()
	if int64(h.LastOffsetDelta) > math.MaxInt64-1-base {
		return 0, 0, fmt.Errorf("%w: offsets would overflow", ErrCorruptBatch)
	}
	record.SetBaseOffset(batch, base)
	record.SetPartitionLeaderEpoch(batch, leaderEpoch)
	h.BaseOffset = base
	h.PartitionLeaderEpoch = leaderEpoch
	if err := l.appendBatch(batch, &h, now.UnixMilli()); err != nil {
		return 0, 0, err
	}
	return base, h.LastOffset(), nil
}

// checkBatch validates one batch from outside.
func (l *Log) checkBatch(batch []byte) (record.Header, error) {
	h, err := record.Validate(batch)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	return h, l.checkBatchBytes(batch)
}

// checkFraming checks one batch whose CRC was checked by the caller: its
// header parses and its length is the batch's.
func (l *Log) checkFraming(batch []byte) (record.Header, error) {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return h, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	if h.TotalBytes() != len(batch) {
		return h, fmt.Errorf("%w: batch is %d bytes, but %d were given", ErrCorruptBatch, h.TotalBytes(), len(batch))
	}
	return h, l.checkBatchBytes(batch)
}

// checkBatchBytes refuses a batch no segment can hold.
func (l *Log) checkBatchBytes(batch []byte) error {
	if int64(len(batch)) > l.config.SegmentBytesMax {
		return fmt.Errorf("%w: %d bytes, segments hold %d", ErrBatchTooLarge, len(batch), l.config.SegmentBytesMax)
	}
	return nil
}

// noteEpoch records that the batch just stored at offset carries epoch. The
// cache is checkpointed lazily, before the recovery point checkpoint moves
// past the batch (checkpointRecoveryPoint): recovery rebuilds the epochs of
// every batch after the checkpointed recovery point from the batches
// themselves, so a crash cannot lose an epoch, and a failed write cannot
// leave an epoch without data.
func (l *Log) noteEpoch(epoch int32, offset int64) {
	if epoch >= 0 && epoch > l.epochs.latestEpoch() {
		l.epochs.assign(epoch, offset)
		l.epochsDirty = true
	}
}

// AssignLeaderEpoch records that epoch starts at the log end, as a new
// leader does before it appends anything (Kafka's assign at election), so
// that EndOffsetForEpoch answers a follower's older epoch with where that
// epoch ends here even while the new one holds no batch: without it, an
// epoch newer than every batch is unknown, and a follower that fetched it
// from a deposed leader could never learn where its log diverged. The
// entry is checkpointed lazily like the others; a crash may lose it while
// it still has no batch, which is harmless, since a restarted broker leads
// again only in a newer epoch.
func (l *Log) AssignLeaderEpoch(epoch int32) {
	l.noteEpoch(epoch, l.LogEndOffset())
}

// saveEpochs writes the leader epoch checkpoint.
func (l *Log) saveEpochs() error {
	if err := writeCheckpoint(l.fsys, l.dir, epochFile, l.epochs.encode()); err != nil {
		return l.checkpointError(err)
	}
	l.epochsDirty = false
	return nil
}

// checkpointError turns a failed checkpoint write into the caller's error.
// A failed checkpoint never damages the log (the old file stays in place).
func (l *Log) checkpointError(err error) error {
	return l.diskError("writing a checkpoint", err)
}

// diskError turns a failed disk operation that left the log's files
// consistent into the caller's error. A full disk is reported and the log
// stays writable; any other error means the device misbehaves (and its
// durable state may be unknown), so the log stops writing.
func (l *Log) diskError(what string, err error) error {
	if errors.Is(err, core.ErrNoSpace) {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	return l.fail(fmt.Errorf("%s: %w", what, err))
}

// appendBatch writes a validated batch whose offsets are final, rolling
// first if needed, and syncs when FlushIntervalMessages is reached.
func (l *Log) appendBatch(batch []byte, h *record.Header, nowMs int64) error {
	assert(h.BaseOffset >= l.LogEndOffset(), "append below the log end")
	if l.shouldRoll(h, nowMs) {
		if err := l.roll(h.BaseOffset, nowMs); err != nil {
			return err
		}
	}
	s := l.active()
	rolledBack, err := s.write(batch)
	if err != nil {
		if !rolledBack || !errors.Is(err, core.ErrNoSpace) {
			return l.fail(fmt.Errorf("appending to segment %d: %w", s.baseOffset, err))
		}
		return fmt.Errorf("storage: appending to segment %d: %w", s.baseOffset, err)
	}
	s.observe(h, l.config.IndexIntervalBytes)
	l.noteEpoch(h.PartitionLeaderEpoch, h.BaseOffset)
	l.unflushedRecords += int64(h.LastOffsetDelta) + 1
	if l.unflushedRecords >= l.config.FlushIntervalMessages {
		return l.Sync()
	}
	return nil
}

// shouldRoll reports whether the batch must go to a new segment: the active
// one would grow past SegmentBytesMax, is too old, has a full index, or
// cannot express the batch's offsets relative to its base.
func (l *Log) shouldRoll(h *record.Header, nowMs int64) bool {
	s := l.active()
	if !s.fits(h.LastOffset()) {
		return true
	}
	if s.sizeBytes == 0 {
		return false
	}
	return s.sizeBytes+int64(h.TotalBytes()) > l.config.SegmentBytesMax ||
		nowMs-s.createdMs > l.config.SegmentAgeMsMax ||
		len(s.index.offsets) >= l.config.offsetEntriesMax() ||
		len(s.index.times) >= l.config.timeEntriesMax()
}

// roll starts a new active segment at base. The old active segment is made
// durable first, data and index files, so that after a crash only the last
// segment can have lost data; recovery relies on it.
func (l *Log) roll(base int64, nowMs int64) error {
	old := l.active()
	assert(base >= old.nextOffset, "rolled segment overlaps")
	if err := old.sync(); err != nil {
		return l.fail(fmt.Errorf("syncing segment %d: %w", old.baseOffset, err))
	}
	if err := l.writeIndexFiles(old); err != nil {
		return err
	}
	file, err := l.fsys.Create(segmentFileName(l.dir, base, logSuffix))
	if err != nil {
		return l.diskError(fmt.Sprintf("creating segment %d", base), err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		file.Close()
		return l.fail(fmt.Errorf("syncing directory: %w", err))
	}
	l.segments = append(l.segments, newSegment(file, base, nowMs))
	l.recoveryPoint = base
	return l.checkpointRecoveryPoint()
}

// writeIndexFiles replaces the index files of s with its in-memory indexes
// and syncs them. Their directory entries become durable with the next
// SyncDir; until then recovery rebuilds them.
func (l *Log) writeIndexFiles(s *segment) error {
	if !s.indexStale {
		return nil
	}
	l.indexBuf = s.index.appendOffsets(l.indexBuf[:0])
	if err := l.writeIndexFile(segmentFileName(l.dir, s.baseOffset, indexSuffix)); err != nil {
		return err
	}
	l.indexBuf = s.index.appendTimes(l.indexBuf[:0])
	if err := l.writeIndexFile(segmentFileName(l.dir, s.baseOffset, timeIndexSuffix)); err != nil {
		return err
	}
	s.indexStale = false
	return nil
}

func (l *Log) writeIndexFile(name string) error {
	file, err := l.fsys.Create(name)
	if err != nil {
		return l.diskError("creating "+name, err)
	}
	_, err = file.Write(l.indexBuf)
	if err == nil {
		err = file.Sync()
	}
	closeErr := file.Close()
	if err == nil {
		err = closeErr
	}
	if err != nil {
		return l.diskError("writing "+name, err)
	}
	return nil
}

// checkpointRecoveryPoint writes the recovery point checkpoint if the
// segment holding the recovery point changed. Recovery scans the whole
// segment that holds the checkpointed offset, so a checkpoint inside the same
// segment would save no work.
//
// A full disk leaves the old checkpoint in place, which is safe (it is lower,
// so recovery validates more), and is not reported: the data is durable.
func (l *Log) checkpointRecoveryPoint() error {
	assert(l.recoveryPoint <= l.LogEndOffset(), "recovery point beyond the log end")
	if l.recoveryPointCheckpointed >= l.active().baseOffset && l.recoveryPointCheckpointed <= l.recoveryPoint {
		return nil
	}
	// The epochs of the batches below the new recovery point must be on disk
	// first: recovery will not rebuild them from those batches.
	if l.epochsDirty {
		if err := l.saveEpochs(); err != nil {
			return l.ignoreNoSpace(err)
		}
	}
	return l.ignoreNoSpace(l.writeRecoveryPoint(l.recoveryPoint))
}

// ignoreNoSpace drops an error from a failed checkpoint that a full disk
// caused and that left the log writable.
func (l *Log) ignoreNoSpace(err error) error {
	if err != nil && l.failed != nil {
		return err
	}
	return nil
}

func (l *Log) writeRecoveryPoint(offset int64) error {
	if err := writeCheckpoint(l.fsys, l.dir, recoveryPointFile, encodeOffsetCheckpoint(offset)); err != nil {
		return l.checkpointError(err)
	}
	l.recoveryPointCheckpointed = offset
	return nil
}

// Sync makes every appended batch durable and advances the recovery point to
// the log end offset. After an error the log is failed (see ErrLogFailed).
func (l *Log) Sync() error {
	if err := l.writable(); err != nil {
		return err
	}
	s := l.active()
	if err := s.sync(); err != nil {
		return l.fail(fmt.Errorf("syncing segment %d: %w", s.baseOffset, err))
	}
	l.unflushedRecords = 0
	l.recoveryPoint = s.nextOffset
	return l.checkpointRecoveryPoint()
}

// Close syncs the log (unless it failed), records the recovery point and a
// clean shutdown (see cleanShutdownFile) and releases the files. The log
// cannot be used afterwards.
func (l *Log) Close() error {
	if l.closed {
		return ErrClosed
	}
	var err error
	if l.failed == nil {
		err = l.Sync()
		if err == nil && l.epochsDirty {
			err = l.saveEpochs()
		}
		if err == nil && l.recoveryPointCheckpointed != l.recoveryPoint {
			err = l.writeRecoveryPoint(l.recoveryPoint)
		}
		if err == nil {
			err = recordCleanShutdown(l.fsys, l.dir)
		}
	}
	for _, s := range l.segments {
		if closeErr := s.file.Close(); err == nil && closeErr != nil {
			err = fmt.Errorf("storage: closing segment %d: %w", s.baseOffset, closeErr)
		}
	}
	l.closed = true
	return err
}
