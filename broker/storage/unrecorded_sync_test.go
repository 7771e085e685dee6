package storage

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// TestUnrecordedFailedSyncSurvivesPowerLoss replays seed 204746 (at commit
// 117e630) on sim.Disk: a group-commit fsync of the active segment fails
// and loses its range on the device while the page cache keeps it; the
// process dies before it records the failure (here every attempt to create
// the marker fails, which leaves the same state as a kill at that point);
// the restart finds no marker and recovers; more batches are appended and
// synced behind the lost range; then the power fails. Before the fix the
// restart only synced the segment (the fsync succeeds without writing the
// lost pages) and moved the recovery point past it, so after the power loss
// the segment held zeros below the recovery point followed by valid
// batches: Open or the scrubber reported corruption and the partition went
// offline. With the fix the restart after an unclean shutdown copies the
// segment, so every batch survives and the scrubber finds nothing.
func TestUnrecordedFailedSyncSurvivesPowerLoss(t *testing.T) {
	disk := newDisk(1)
	config := smallConfig()
	config.SegmentBytesMax = 1 << 20 // one segment, as segment 60 of the seed
	l := mustOpen(t, disk, config)
	for i := range 3 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(3, 1, 100, 1000), 0, epoch0)
	job := l.StartSync()
	if job == nil {
		t.Fatal("no sync job for an appended batch")
	}
	disk.InjectFault(sim.DiskFault{Op: sim.DiskOpSync, Count: 1, Err: core.ErrIO})
	disk.InjectFault(sim.DiskFault{Op: sim.DiskOpCreate, PathPrefix: testDir + "/" + syncFailedFile, Err: core.ErrIO})
	runErr := job.Run()
	if !errors.Is(runErr, core.ErrIO) || !errors.Is(runErr, errSyncFailureUnrecorded) {
		t.Fatalf("sync job: %v, want an unrecorded I/O error", runErr)
	}
	if lost := disk.Stats().SyncsLostData; lost != 1 {
		t.Fatalf("the failed fsync lost %d ranges, want 1 (pick another disk seed)", lost)
	}
	disk.ClearFaults()
	// The process dies: no FinishSync, no Close, the page cache stays.
	if exists(disk, testDir+"/"+syncFailedFile) {
		t.Fatal("the failed fsync was recorded; the test needs it unrecorded")
	}
	l, report, err := OpenWithReport(disk, testDir, config, epoch0)
	if err != nil || report.SyncFailureRecorded || report.CopiedSegments != 1 {
		t.Fatalf("restart after the kill: %v, report %+v; want the segment copied", err, report)
	}
	for i := 4; i < 8; i++ {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckpointRecoveryPoint(); err != nil {
		t.Fatal(err)
	}
	want := idsOf(readAll(t, l, 1<<20))
	disk.Crash()
	l, err = Open(disk, testDir, config, epoch0)
	if err != nil {
		t.Fatalf("Open after the power loss: %v", err)
	}
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) || len(got) != 8 {
		t.Fatalf("after the power loss the log holds %v, want %v", got, want)
	}
	if _, wrapped, err := l.Scrub(ScrubCursor{}, 1<<30); err != nil || !wrapped {
		t.Fatalf("scrub after the power loss: wrapped %v, %v", wrapped, err)
	}
}

// TestCleanShutdownRecorded checks the clean shutdown record's life: a
// clean Close writes it, the next Open removes it before it syncs anything
// (so a kill afterwards counts as unclean), and a restart after a clean
// Close copies nothing while one after a kill copies the active segment
// holding data past the checkpointed recovery point.
func TestCleanShutdownRecorded(t *testing.T) {
	disk := newDisk(3)
	marker := testDir + "/" + cleanShutdownFile
	l := mustOpen(t, disk, smallConfig())
	if exists(disk, marker) {
		t.Fatal("an open log has a clean shutdown record")
	}
	mustAppend(t, l, makeBatch(0, 1, 100, 1000), 0, epoch0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	disk.Crash()
	if !exists(disk, marker) {
		t.Fatal("a clean Close left no durable clean shutdown record")
	}
	_, report, err := OpenWithReport(disk, testDir, smallConfig(), epoch0)
	if err != nil || report.CopiedSegments != 0 {
		t.Fatalf("restart after a clean Close: %v, report %+v", err, report)
	}
	disk.Crash()
	if exists(disk, marker) {
		t.Fatal("Open left the clean shutdown record in place")
	}
	l = mustOpen(t, disk, smallConfig())
	mustAppend(t, l, makeBatch(1, 1, 100, 1000), 0, epoch0)
	// A kill: reopen without Close.
	l, report, err = OpenWithReport(disk, testDir, smallConfig(), epoch0)
	if err != nil || report.CopiedSegments != 1 || l.LogEndOffset() != 2 {
		t.Fatalf("restart after a kill: %v, report %+v, end %d", err, report, l.LogEndOffset())
	}
}

// TestUncleanRestartOnFullDiskSyncs checks that the precautionary copy after
// an unclean shutdown does not keep a full disk from opening the log: the
// copy fails for want of space, its partial file is removed, and recovery
// syncs the segment instead, keeping every batch.
func TestUncleanRestartOnFullDiskSyncs(t *testing.T) {
	disk := newDisk(4)
	l := mustOpen(t, disk, smallConfig())
	for i := range 3 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	want := idsOf(readAll(t, l, 1<<20))
	// A kill on a full disk: reopen without Close, no byte free.
	disk.SetCapacity(disk.UsedBytes())
	_, report, err := OpenWithReport(disk, testDir, smallConfig(), epoch0)
	if err != nil || report.CopiedSegments != 0 {
		t.Fatalf("unclean restart on a full disk: %v, report %+v", err, report)
	}
	if name := segmentFileName(testDir, 0, logSuffix) + tempSuffix; exists(disk, name) {
		t.Fatal("the partial copy was left behind")
	}
	disk.Crash()
	l = mustOpen(t, disk, smallConfig())
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a crash the log holds %v, want %v", got, want)
	}
}
