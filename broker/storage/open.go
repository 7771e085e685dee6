package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
)

// segmentCountMax bounds the segments of one partition, so that a directory
// full of junk cannot exhaust file handles.
const segmentCountMax = 1 << 16

// Open opens the log in dir, creating the directory if needed, and recovers
// it after a crash:
//
//  1. Stray temporary files and index files without a .log are removed.
//  2. The checkpoints are read. A garbled checkpoint is not trusted: a bad
//     recovery point or leader epoch file makes recovery validate the whole
//     log (and rebuild the epochs from it), a bad log start offset is
//     replaced by the first segment's base offset.
//  3. Segments wholly below the log start offset are deleted (a retention
//     run that a crash interrupted).
//  4. Segments before the one holding the recovery point are trusted: their
//     index files are loaded if plausible (else rebuilt from the batches)
//     and only the batches after the last index entry are read.
//  5. From the segment holding the recovery point on, every batch is read,
//     and indexes and leader epochs are rebuilt. At the first invalid batch
//     recovery tells a torn tail from corruption (judgeInvalidBatch): a torn
//     tail is truncated in place (later segments, which hold nothing valid,
//     are deleted); corruption fails Open with a *CorruptionError
//     (ErrCorruption) before anything is truncated or deleted.
//  6. Everything recovered is synced (or, after a recorded failed fsync,
//     copied into new files; see RecordSyncFailure), then the checkpoints
//     are rewritten. A full disk may fail the checkpoint and index writes;
//     Open still succeeds, as the old files stay valid.
//
// Every batch read in steps 4 and 5 is validated (header, CRC, offsets
// increasing) and its header read three times (checkStoredBatch); a batch is
// judged invalid, and the log cut there, only on bytes that read the same
// three times, and the checkpoints and index files are read until three
// reads agree.
// So a transient bit flip on read cannot move the log end or destroy good
// data: reads that keep disagreeing fail Open with ErrCorruptLog, having
// changed nothing that a later Open needs.
//
// now is the creation time of the active segment for age-based rolling.
func Open(fsys core.FS, dir string, config Config, now time.Time) (*Log, error) {
	l, _, err := OpenWithReport(fsys, dir, config, now)
	return l, err
}

// OpenWithReport is Open that also says what recovery did, for the broker's
// log: a torn tail cut, segments copied after a failed fsync. On an error
// the report describes what happened before it.
func OpenWithReport(fsys core.FS, dir string, config Config, now time.Time) (*Log, RecoveryReport, error) {
	if err := config.Validate(); err != nil {
		return nil, RecoveryReport{}, err
	}
	if fsys == nil {
		return nil, RecoveryReport{}, errors.New("storage: Open with a nil FS")
	}
	l := &Log{fsys: watchedFS{fsys}, dir: path.Clean(dir), config: config}
	var r recovery
	if err := l.open(now.UnixMilli(), &r); err != nil {
		for _, s := range l.segments {
			s.file.Close()
		}
		return nil, r.report, fmt.Errorf("storage: opening %s: %w", l.dir, err)
	}
	return l, r.report, nil
}

// recovery is the state of one Open.
type recovery struct {
	report RecoveryReport
	// fullScan is true when the recovery point or epoch checkpoint is
	// garbled: every segment is validated and the epochs rebuilt.
	fullScan bool
	// epochsBefore is the epoch file as read (nil if missing or garbled).
	epochsBefore []byte
	// scanFrom is the index of the first segment validated whole.
	scanFrom int
	// boundarySeen is true once a segment base or a validated batch's end
	// equals the checkpointed recovery point; beyond is the corruption to
	// report at the first batch ending after it, if none does.
	boundarySeen bool
	beyond       error
	// cleanShutdown is true when the last process closed the log cleanly
	// (see cleanShutdownFile): no fsync of it can have failed unrecorded.
	cleanShutdown bool
}

func (l *Log) open(nowMs int64, r *recovery) error {
	if err := l.makeDir(); err != nil {
		return err
	}
	syncFailed, err := syncFailureRecorded(l.fsys, l.dir)
	if err != nil {
		return err
	}
	r.report.SyncFailureRecorded = syncFailed
	if r.cleanShutdown, err = cleanShutdownRecorded(l.fsys, l.dir); err != nil {
		return err
	}
	bases, err := l.listSegments()
	if err != nil {
		return err
	}
	if r.fullScan, r.epochsBefore, err = l.readCheckpoints(); err != nil {
		return err
	}
	for _, base := range bases {
		file, err := l.fsys.Open(segmentFileName(l.dir, base, logSuffix))
		if err != nil {
			return err
		}
		l.segments = append(l.segments, newSegment(file, base, nowMs))
	}
	if err := l.dropBelowLogStart(); err != nil {
		return err
	}
	if err := l.recoverSegments(r); err != nil {
		return err
	}
	return l.finishRecovery(r, nowMs)
}

// makeDir creates the partition directory and makes its entry durable in
// every ancestor, since a new directory vanishes in a crash until its parent
// is synced.
func (l *Log) makeDir() error {
	return core.MkdirAllDurable(l.fsys, l.dir)
}

// listSegments returns the sorted base offsets of the .log files, removing
// temporary files and index files that have no .log beside them.
func (l *Log) listSegments() ([]int64, error) {
	entries, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var bases, indexBases []int64
	var indexNames []string
	for _, e := range entries {
		if e.IsDir {
			continue
		}
		if strings.HasSuffix(e.Name, tempSuffix) {
			if err := l.fsys.Remove(path.Join(l.dir, e.Name)); err != nil {
				return nil, err
			}
			continue
		}
		base, suffix, ok := parseSegmentFileName(e.Name)
		switch {
		case !ok:
		case suffix == logSuffix:
			bases = append(bases, base)
		default:
			indexBases = append(indexBases, base)
			indexNames = append(indexNames, e.Name)
		}
	}
	slices.Sort(bases)
	if len(bases) > segmentCountMax {
		return nil, fmt.Errorf("%d segments, at most %d are supported", len(bases), segmentCountMax)
	}
	for i, base := range indexBases {
		if _, found := slices.BinarySearch(bases, base); !found {
			if err := l.fsys.Remove(path.Join(l.dir, indexNames[i])); err != nil {
				return nil, err
			}
		}
	}
	return bases, nil
}

// readCheckpoints loads the three checkpoint files. fullScan is true if the
// recovery point cannot be trusted; epochsBefore is the epoch file as read
// (nil if missing or garbled), to tell whether it must be rewritten.
func (l *Log) readCheckpoints() (fullScan bool, epochsBefore []byte, err error) {
	logStart, _, err := readOffsetCheckpoint(l.fsys, l.dir, logStartFile)
	if err != nil && !errors.Is(err, errBadCheckpoint) {
		return false, nil, err
	}
	l.logStartOffset = logStart // 0 when missing or garbled
	recoveryPoint, _, err := readOffsetCheckpoint(l.fsys, l.dir, recoveryPointFile)
	if errors.Is(err, errBadCheckpoint) {
		fullScan = true
	} else if err != nil {
		return false, nil, err
	}
	l.recoveryPoint = recoveryPoint
	l.recoveryPointCheckpointed = recoveryPoint
	epochs, err := readEpochCheckpoint(l.fsys, l.dir)
	switch {
	case errors.Is(err, errBadCheckpoint):
		return true, nil, nil
	case err != nil:
		return false, nil, err
	}
	l.epochs = epochs
	return fullScan, epochs.encode(), nil
}

// dropBelowLogStart deletes segments that end before the log start offset:
// those followed by a segment starting at or before it.
func (l *Log) dropBelowLogStart() error {
	n := 0
	for n+1 < len(l.segments) && l.segments[n+1].baseOffset <= l.logStartOffset {
		n++
	}
	for _, s := range l.segments[:n] {
		if err := l.removeSegmentFiles(s); err != nil {
			return err
		}
	}
	l.segments = slices.Delete(l.segments, 0, n)
	return nil
}

// recoverSegments loads trusted segments, validates the rest, and at the
// first invalid batch either cuts a torn tail or returns a *CorruptionError,
// having changed nothing (judgeInvalidBatch). It sets r.scanFrom, the index
// of the first segment validated whole.
func (l *Log) recoverSegments(r *recovery) error {
	r.scanFrom = 0
	for i, s := range l.segments {
		if !r.fullScan && s.baseOffset <= l.recoveryPoint {
			r.scanFrom = i
		}
	}
	if len(l.segments) > 0 {
		// Epochs that start inside the validated range are rebuilt from its
		// batches. One that starts exactly at its first offset is kept: it
		// may cover a gap (retention moved it there), and a batch of a newer
		// epoch at that offset replaces it anyway.
		l.epochs.truncateFromEnd(l.segments[r.scanFrom].baseOffset + 1)
	}
	nextOffset := int64(0)
	for i, s := range l.segments {
		if s.baseOffset < nextOffset {
			// The previous segment's batches, all valid, run past this
			// segment's base: a base offset changed at rest.
			return l.corruption(s, 0, s.baseOffset, fmt.Sprintf("segment starts below the end %d of the previous segment", nextOffset))
		}
		if s.baseOffset == l.recoveryPointCheckpointed {
			r.boundarySeen = true
		}
		fileBytes, err := s.file.Size()
		if err != nil {
			return err
		}
		var clean bool
		if i < r.scanFrom {
			clean, err = l.loadSegment(s, fileBytes)
		} else {
			clean, err = l.scanRecovered(s, fileBytes, r)
		}
		if err != nil {
			return err
		}
		if !clean || s.sizeBytes < fileBytes {
			if err := l.judgeInvalidBatch(i, r.scanFrom, fileBytes, r.report.SyncFailureRecorded); err != nil {
				return err
			}
			if err := l.checkRecoveryPointBoundary(r); err != nil {
				return err
			}
			r.scanFrom = min(r.scanFrom, i)
			return l.cutTornTail(i, fileBytes, &r.report)
		}
		nextOffset = s.nextOffset
	}
	return l.checkRecoveryPointBoundary(r)
}

// scanRecovered is scanSegment with leader epochs rebuilt, noting what
// checkRecoveryPointBoundary needs: whether a batch ends exactly at the
// checkpointed recovery point, and the first batch that ends after it.
func (l *Log) scanRecovered(s *segment, fileBytes int64, r *recovery) (clean bool, err error) {
	checkpointed := l.recoveryPointCheckpointed
	for s.sizeBytes < fileBytes {
		position := s.sizeBytes
		h, valid, err := l.confirmBatch(s, fileBytes)
		if err != nil || !valid {
			return false, err
		}
		if h.PartitionLeaderEpoch >= 0 {
			l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
		}
		if h.NextOffset() == checkpointed {
			r.boundarySeen = true
		}
		if r.beyond == nil && h.NextOffset() > checkpointed {
			r.beyond = l.corruption(s, position, h.BaseOffset, fmt.Sprintf("batch [%d, %d] runs past the recovery point %d, where a batch must end", h.BaseOffset, h.LastOffset(), checkpointed))
		}
		s.observe(&h, l.config.IndexIntervalBytes)
	}
	return true, nil
}

// checkRecoveryPointBoundary reports corruption when no valid batch ends at
// the checkpointed recovery point although the log starts below it: the log
// only ever checkpoints the end of a batch, a segment's base offset or its
// start (Sync, roll, TruncateTo, retention, recovery), so a batch that
// crosses it, or a log that ends below it, means synced data changed at
// rest: a base offset flipped (the CRC does not cover it; in the last batch
// nothing else shows it) or a file shortened or removed. A log that ends at
// or before its start is exempt: an interrupted TruncateFullyAndStartAt
// leaves the old checkpoint above the new, empty log.
func (l *Log) checkRecoveryPointBoundary(r *recovery) error {
	checkpointed := l.recoveryPointCheckpointed
	if r.boundarySeen || checkpointed <= l.logStartOffset || len(l.segments) == 0 || l.LogEndOffset() <= l.logStartOffset {
		return nil
	}
	if r.beyond != nil {
		return r.beyond
	}
	s := l.active()
	return l.corruption(s, s.sizeBytes, s.nextOffset, fmt.Sprintf("the log ends below the recovery point %d", checkpointed))
}

// cutTornTail truncates segment i, fileBytes long, to its valid prefix and
// deletes every later segment (judgeInvalidBatch found nothing valid in
// them). The later segments go first, durably, so that no crash can bring
// them back behind a shortened segment i. Truncating needs no free space.
func (l *Log) cutTornTail(i int, fileBytes int64, report *RecoveryReport) error {
	s := l.segments[i]
	report.TruncatedFile = segmentFileName(l.dir, s.baseOffset, logSuffix)
	report.TruncatedPosition = s.sizeBytes
	report.TruncatedBytes = fileBytes - s.sizeBytes
	for j := len(l.segments) - 1; j > i; j-- {
		later := l.segments[j]
		if laterBytes, err := later.file.Size(); err == nil {
			report.TruncatedBytes += laterBytes
		}
		if err := l.removeSegmentFiles(later); err != nil {
			return err
		}
		report.RemovedSegments++
	}
	l.segments = l.segments[:i+1]
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	if err := s.file.Truncate(s.sizeBytes); err != nil {
		return err
	}
	s.indexStale = true
	return nil
}

// loadSegment sets up a trusted segment from its index files, reading only
// the batches after the last index entry. A missing or implausible index, or
// one whose last entry does not point at a batch with its offset, is rebuilt
// from all the batches. Either way every batch read is validated.
func (l *Log) loadSegment(s *segment, fileBytes int64) (clean bool, err error) {
	x, ok, err := l.readIndexFiles(s.baseOffset, fileBytes)
	if err != nil {
		return false, err
	}
	if ok && len(x.offsets) > 0 {
		// The scan resumes at the last entry and trusts its offset, so the
		// header there is read until three reads agree.
		last := x.offsets[len(x.offsets)-1]
		h, readErr := l.readHeaderAt(s, int64(last.position), fileBytes, true)
		if err := dataError(readErr); err != nil {
			return false, err
		}
		ok = readErr == nil && h.BaseOffset == s.baseOffset+int64(last.relativeOffset)
	}
	if ok {
		s.index = x
		s.sizeBytes = x.lastPosition()
		s.nextOffset = s.baseOffset
		if n := len(x.offsets); n > 0 {
			s.nextOffset += int64(x.offsets[n-1].relativeOffset)
		}
		s.maxTimestamp = x.lastTimestamp()
		s.indexStale = false
	}
	clean, err = l.scanSegment(s, fileBytes, false)
	s.syncedBytes = s.sizeBytes
	return clean, err
}

// readIndexFiles reads and checks a segment's index files; ok is false if
// they are missing or implausible.
func (l *Log) readIndexFiles(base, logBytes int64) (segmentIndex, bool, error) {
	offsetData, err := readWholeFile(l.fsys, segmentFileName(l.dir, base, indexSuffix), l.config.IndexBytesMax)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errBadCheckpoint) {
		return segmentIndex{}, false, nil
	}
	if err != nil {
		return segmentIndex{}, false, err
	}
	timeData, err := readWholeFile(l.fsys, segmentFileName(l.dir, base, timeIndexSuffix), l.config.IndexBytesMax)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errBadCheckpoint) {
		return segmentIndex{}, false, nil
	}
	if err != nil {
		return segmentIndex{}, false, err
	}
	x, ok := decodeIndexes(offsetData, timeData, logBytes)
	return x, ok, nil
}

// scanSegment reads the batches of s from s.sizeBytes to fileBytes,
// validating each (confirmBatch) and updating the segment as it goes; with
// rebuildEpochs it also rebuilds the leader epochs. clean is false if it
// stopped at a stably invalid batch (at s.sizeBytes).
func (l *Log) scanSegment(s *segment, fileBytes int64, rebuildEpochs bool) (clean bool, err error) {
	for s.sizeBytes < fileBytes {
		h, valid, err := l.confirmBatch(s, fileBytes)
		if err != nil || !valid {
			return false, err
		}
		if rebuildEpochs && h.PartitionLeaderEpoch >= 0 {
			l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
		}
		s.observe(&h, l.config.IndexIntervalBytes)
	}
	return true, nil
}

// dataError returns nil for errors that mean bad data (the caller treats the
// batch as invalid) and err itself for failed reads.
func dataError(err error) error {
	if errors.Is(err, record.ErrTruncated) || errors.Is(err, record.ErrCorrupt) {
		return nil
	}
	return err
}
