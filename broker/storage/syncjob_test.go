package storage

import (
	"errors"
	"testing"

	"github.com/kafkasim/kafkasim/core"
)

// TestSyncJobGroupCommit checks the group-commit contract: one job in
// flight, its durable bound fixed when it starts, appends during it riding
// the next job, and a crash keeping exactly what completed jobs covered.
func TestSyncJobGroupCommit(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	mustAppend(t, l, makeBatch(1, 2, 10, 1), 0, at(0))
	job := l.StartSync()
	if job == nil || job.EndOffset() != 2 {
		t.Fatalf("first job %+v, want one ending at offset 2", job)
	}
	if again := l.StartSync(); again != nil {
		t.Fatal("a second job started while one is in flight")
	}
	mustAppend(t, l, makeBatch(2, 3, 10, 2), 0, at(1))
	if err := l.TruncateTo(1, at(1)); !errors.Is(err, ErrSyncInFlight) {
		t.Fatalf("TruncateTo during a sync: %v, want ErrSyncInFlight", err)
	}
	if got := l.DurableEndOffset(); got != 0 {
		t.Fatalf("durable end %d before the job finished, want 0", got)
	}
	if err := l.FinishSync(job, job.Run()); err != nil {
		t.Fatal(err)
	}
	if got := l.DurableEndOffset(); got != 2 {
		t.Fatalf("durable end %d after the first job, want 2 (the batch appended during it rides the next)", got)
	}
	next := l.StartSync()
	if next == nil || next.EndOffset() != 5 {
		t.Fatalf("second job %+v, want one ending at offset 5", next)
	}
	// The power fails while the second job is in flight: what the first
	// job covered survives, the rest may not.
	disk.Crash()
	reopened := mustOpen(t, disk, smallConfig())
	if end := reopened.LogEndOffset(); end < 2 {
		t.Fatalf("log end %d after the crash, want at least the durable 2", end)
	}
}

// TestSyncJobFailureFailsLog checks that a failed fsync fails the log: the
// unsynced range is unknown, so nothing more may be acknowledged.
func TestSyncJobFailureFailsLog(t *testing.T) {
	l := mustOpen(t, newDisk(2), smallConfig())
	mustAppend(t, l, makeBatch(1, 1, 10, 1), 0, at(0))
	job := l.StartSync()
	if err := l.FinishSync(job, core.ErrIO); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("FinishSync of a failed fsync: %v, want ErrLogFailed", err)
	}
	if got := l.DurableEndOffset(); got != 0 {
		t.Fatalf("durable end %d after a failed fsync, want 0", got)
	}
	if job := l.StartSync(); job != nil {
		t.Fatal("a job started on a failed log")
	}
}

// TestSyncJobAfterClose ignores the completion of a job whose log closed.
func TestSyncJobAfterClose(t *testing.T) {
	l := mustOpen(t, newDisk(3), smallConfig())
	mustAppend(t, l, makeBatch(1, 1, 10, 1), 0, at(0))
	job := l.StartSync()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.FinishSync(job, core.ErrIO); err != nil {
		t.Fatalf("late completion after Close: %v, want it ignored", err)
	}
}

// TestSyncJobAfterRollFailedOnIndexes: a roll syncs the full segment and
// then fails to write its index files on a full disk. What the roll synced
// is durable, so the next job must still carry the durable end up to it:
// with nothing left to fsync, StartSync once returned no job and the
// durable end stayed below data already synced, for good on a follower,
// whose fetcher waits for its log to be durable before it fetches again
// (sim seed 1500389).
func TestSyncJobAfterRollFailedOnIndexes(t *testing.T) {
	disk := newDisk(3)
	l := mustOpen(t, disk, smallConfig())
	batchBytes := int64(len(makeBatch(0, 1, 100, 1)))
	id := uint64(0)
	for l.Size()+batchBytes <= smallConfig().SegmentBytesMax {
		mustAppend(t, l, makeBatch(id, 1, 100, 1), 0, at(0))
		id++
	}
	// The next append rolls: its sync of the full segment needs no space,
	// but the index files do.
	disk.SetCapacity(disk.UsedBytes())
	if _, _, err := l.Append(makeBatch(id, 1, 100, 1), 0, at(0)); !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("append that rolls on a full disk: %v, want ENOSPC", err)
	}
	if l.LogEndOffset() == l.DurableEndOffset() {
		t.Fatalf("durable end %d already at the log end: the test exercised nothing", l.DurableEndOffset())
	}
	job := l.StartSync()
	if job == nil {
		t.Fatalf("no sync job with the durable end %d below the log end %d", l.DurableEndOffset(), l.LogEndOffset())
	}
	if err := l.FinishSync(job, job.Run()); err != nil {
		t.Fatal(err)
	}
	if l.DurableEndOffset() != l.LogEndOffset() {
		t.Fatalf("durable end %d after the job, want the log end %d", l.DurableEndOffset(), l.LogEndOffset())
	}
}
