package storage

import (
	"errors"
	"path"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// TestRecoveryLatentSectorError: bytes that recovery must read and that no
// read can read (a latent sector error) are damage at rest, like
// corruption: Open fails with ErrCorruption (so the broker takes only this
// partition offline) and cuts nothing, every time. A passing device error
// (a few failed reads) is not damage: Open reads again and succeeds.
func TestRecoveryLatentSectorError(t *testing.T) {
	const active = 36 // 40 batches: the last segment holds offsets 36-39
	name := segmentFileName(testDir, active, logSuffix)
	setup := func(t *testing.T) *sim.Disk {
		disk := newDisk(1)
		buildSmallBatches(t, disk, 40)
		writeFile(t, disk, path.Join(testDir, recoveryPointFile), encodeOffsetCheckpoint(active))
		return disk
	}
	t.Run("persistent", func(t *testing.T) {
		disk := setup(t)
		if err := disk.AddLatentError(name, smallBatchBytes+10, 4); err != nil {
			t.Fatal(err)
		}
		for attempt := range 2 {
			_, err := Open(disk, testDir, smallConfig(), epoch0)
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("Open #%d: %v, want ErrCorruption", attempt, err)
			}
		}
		files := disk.StableFiles(name)
		if len(files) != 1 || files[0].StableBytes != 4*smallBatchBytes {
			t.Fatalf("the damaged segment changed: %+v, want %d stable bytes", files, 4*smallBatchBytes)
		}
	})
	t.Run("passing", func(t *testing.T) {
		disk := setup(t)
		disk.InjectFault(sim.DiskFault{Op: sim.DiskOpRead, Probability: 1, Count: unreadableReadsMin - 1, Err: core.ErrIO})
		l, err := Open(disk, testDir, smallConfig(), epoch0)
		if err != nil {
			t.Fatalf("Open after %d failed reads: %v", unreadableReadsMin-1, err)
		}
		defer l.Close()
		if l.LogEndOffset() != 40 {
			t.Fatalf("log end %d, want 40", l.LogEndOffset())
		}
		if failed := disk.Stats().CallsFailed[sim.DiskOpRead]; failed != unreadableReadsMin-1 {
			t.Fatalf("%d reads failed, want %d", failed, unreadableReadsMin-1)
		}
	})
}

// TestReadLatentSectorError: a read of bytes that no read can read reports
// ErrCorruption (the broker takes the partition offline), and a read that
// fails a few times and then succeeds returns the data.
func TestReadLatentSectorError(t *testing.T) {
	disk := newDisk(2)
	buildSmallBatches(t, disk, 8)
	l := mustOpen(t, disk, smallConfig())
	defer l.Close()
	disk.InjectFault(sim.DiskFault{Op: sim.DiskOpRead, Probability: 1, Count: unreadableReadsMin - 1, Err: core.ErrIO})
	if data, err := l.Read(0, 1<<20, l.LogEndOffset(), nil); err != nil || len(data) == 0 {
		t.Fatalf("Read after passing errors: %d bytes, %v", len(data), err)
	}
	if err := disk.AddLatentError(segmentFileName(testDir, 0, logSuffix), 100, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1<<20, l.LogEndOffset(), nil); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Read over a latent sector error: %v, want ErrCorruption", err)
	}
}
