package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/kafkasim/kafkasim/core"
)

// A failed fsync leaves the synced range of a file unknown: Linux may mark the
// dirty pages clean although the device never got them ("fsyncgate"), so
// reads still return the data and a later fsync succeeds without writing it.
// Only a fresh write is then sure to reach the device, so recovery copies
// such a segment into a new file. A restart cannot see that the previous
// process had a failed fsync, and copying every segment with unsynced data on
// every unclean restart costs a segment of free space per partition (a nearly
// full disk could not restart) and rewrites up to a segment per partition per
// crash. So the failure is written down: the first failed fsync of a segment
// file creates syncFailedFile in the partition directory, durably, before
// the error reaches the log (which then refuses writes until it is reopened).
// Recovery copies segments only when the marker exists, and removes it once
// the copies are durable.
//
// A process killed between the failed fsync and the marker's directory sync
// restarts without the marker. Seed 204746 (at commit 117e630) did exactly
// that: a group-commit fsync of the active segment failed, the broker was
// killed while creating the marker, the restart synced the segment (the
// fsync succeeded without writing the lost pages) and moved the recovery
// point past them, and a power loss 14 seconds later left 560 zero bytes
// below the recovery point, followed by valid batches: the scrubber took
// the partition offline. So a clean Close records that every fsync of the
// process succeeded or was recorded (cleanShutdownFile, as Kafka's
// .kafka_cleanshutdown), and recovery after any other end copies the
// segments holding data past the checkpointed recovery point as it does
// after a recorded failure. Only the active segment can hold such data
// (roll syncs the old one), and with the broker checkpointing the recovery
// point every second only a partition appended to in the last second has
// one to copy. The copy is then a precaution: on a full disk recovery
// syncs instead, which reopens the window rather than refusing to open.

// syncFailedFile is the marker file; it is empty, so that creating it needs
// no free data blocks on a full disk.
const syncFailedFile = "segment-sync-failed"

// RecordSyncFailure durably records in the partition directory dir that an
// fsync of a segment file failed, so that the next Open copies the segments
// whose contents the failure made unknown. The log calls it itself for every
// failed Sync of a segment file it opened (see watchedFS); callers that sync
// a segment file through any other handle must call it before they report
// the failure. It needs no free data blocks.
func RecordSyncFailure(fsys core.FS, dir string) error {
	file, err := fsys.Create(path.Join(dir, syncFailedFile))
	if err != nil {
		return fmt.Errorf("storage: recording a failed fsync in %s: %w", dir, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("storage: recording a failed fsync in %s: %w", dir, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: recording a failed fsync in %s: %w", dir, err)
	}
	return nil
}

// cleanShutdownFile is written by a clean Close, after its last fsync, and
// removed by the next Open before it syncs anything: while it is missing, a
// failed fsync of the log may have gone unrecorded. It is empty, so that
// writing it needs no free data blocks.
const cleanShutdownFile = "clean-shutdown"

// recordCleanShutdown durably records in dir that the log was closed
// cleanly.
func recordCleanShutdown(fsys core.FS, dir string) error {
	file, err := fsys.Create(path.Join(dir, cleanShutdownFile))
	if err == nil {
		err = file.Close()
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("storage: recording a clean shutdown in %s: %w", dir, err)
	}
	return nil
}

// cleanShutdownRecorded reports whether the last process closed the log in
// dir cleanly.
func cleanShutdownRecorded(fsys core.FS, dir string) (bool, error) {
	return fileExists(fsys, path.Join(dir, cleanShutdownFile))
}

// takeCleanShutdown durably removes the clean shutdown record, if recorded
// says it exists, before this process syncs a segment.
func takeCleanShutdown(fsys core.FS, dir string, recorded bool) error {
	if !recorded {
		return nil
	}
	if err := fsys.Remove(path.Join(dir, cleanShutdownFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fsys.SyncDir(dir)
}

// syncFailureRecorded reports whether the marker exists in dir.
func syncFailureRecorded(fsys core.FS, dir string) (bool, error) {
	return fileExists(fsys, path.Join(dir, syncFailedFile))
}

// fileExists reports whether the file name exists.
func fileExists(fsys core.FS, name string) (bool, error) {
	file, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	file.Close()
	return true, nil
}

// clearSyncFailure removes the marker durably. The caller has made every
// segment it covered durable by copying.
func clearSyncFailure(fsys core.FS, dir string) error {
	if err := fsys.Remove(path.Join(dir, syncFailedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fsys.SyncDir(dir)
}

// watchedFS wraps the log's FS so that every failed Sync of a segment file
// (including a group-commit SyncJob run on another goroutine, and the copies
// recovery makes) records the failure with RecordSyncFailure before the
// error is returned. Wrapping the files rather than the call sites means no
// sync path can forget it.
type watchedFS struct {
	core.FS
}

// Create implements core.FS.
func (w watchedFS) Create(name string) (core.File, error) {
	file, err := w.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return w.watch(file, name), nil
}

// Open implements core.FS.
func (w watchedFS) Open(name string) (core.File, error) {
	file, err := w.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return w.watch(file, name), nil
}

// watch wraps segment files (and their temporary copies); other files'
// failed syncs leave no segment in doubt: a checkpoint or index file is
// replaced or rebuilt whole.
func (w watchedFS) watch(file core.File, name string) core.File {
	if !strings.HasSuffix(strings.TrimSuffix(name, tempSuffix), logSuffix) {
		return file
	}
	return &watchedFile{File: file, fsys: w.FS, dir: path.Dir(name)}
}

// watchedFile is a segment file whose failed Sync is recorded.
type watchedFile struct {
	core.File
	fsys core.FS
	dir  string
}

// Sync implements core.File. A Sync refused because the handle is closed
// (or outlived a simulated crash) reached no device and is not recorded.
func (f *watchedFile) Sync() error { return f.recordFailure(f.File.Sync()) }

// SyncPrefix implements core.PrefixSyncer, recording a failure like Sync.
func (f *watchedFile) SyncPrefix(sizeBytes int64) error {
	return f.recordFailure(core.SyncPrefix(f.File, sizeBytes))
}

// recordFailure records the failed fsync that err reports, if any.
func (f *watchedFile) recordFailure(err error) error {
	if err == nil || errors.Is(err, fs.ErrClosed) {
		return err
	}
	var recordErr error
	for range syncFailureRecordAttemptsMax {
		if recordErr = RecordSyncFailure(f.fsys, f.dir); recordErr == nil {
			return err
		}
	}
	return fmt.Errorf("%w (%w: %v)", err, errSyncFailureUnrecorded, recordErr)
}

// syncFailureRecordAttemptsMax bounds the attempts to record a failed
// fsync: a transient error creating the marker should not open the window
// described above.
const syncFailureRecordAttemptsMax = 3

// errSyncFailureUnrecorded is wrapped in the error of a failed Sync whose
// failure could not be recorded: the next recovery will not know that the
// segment's content is in doubt.
var errSyncFailureUnrecorded = errors.New("storage: the failed fsync could not be recorded")
