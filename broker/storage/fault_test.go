package storage

import (
	"errors"
	"reflect"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// TestFullDisk checks that a full disk fails appends with core.ErrNoSpace
// without leaving a partial batch, keeps the log readable and writable, and
// that appends work again once space is freed, also across a crash.
func TestFullDisk(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 10 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	want := idsOf(readAll(t, l, 1<<20))
	disk.SetCapacity(disk.UsedBytes() + 100) // room for part of one batch
	for i := range 5 {
		_, _, err := l.Append(makeBatch(uint64(100+i), 1, 100, 1000), 0, epoch0)
		if !errors.Is(err, core.ErrNoSpace) || errors.Is(err, ErrLogFailed) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) || l.LogEndOffset() != 10 {
		t.Fatalf("after failed appends: %v end %d", got, l.LogEndOffset())
	}
	disk.SetCapacity(0)
	mustAppend(t, l, makeBatch(200, 1, 100, 1000), 0, epoch0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	disk.Crash()
	l = mustOpen(t, disk, smallConfig())
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, append(want, 200)) {
		t.Fatalf("after the crash: %v", got)
	}
}

// TestIOErrorFailsLog checks the fsyncgate rule: after an I/O error on a
// write or a sync the log refuses writes with ErrLogFailed but still serves
// what it had, and a reopen recovers a valid prefix that keeps everything
// synced before the error, for write and sync failures with and without a
// crash before the reopen.
func TestIOErrorFailsLog(t *testing.T) {
	for _, op := range []sim.DiskOp{sim.DiskOpWrite, sim.DiskOpSync} {
		for _, crash := range []bool{false, true} {
			disk := newDisk(7)
			l := mustOpen(t, disk, smallConfig())
			for i := range 8 {
				mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			durable := idsOf(readAll(t, l, 1<<20))
			disk.InjectFault(sim.DiskFault{Op: op, Count: 1, Err: core.ErrIO})
			mustAppendOrFail := func() error {
				if _, _, err := l.Append(makeBatch(50, 1, 100, 1000), 0, epoch0); err != nil {
					return err
				}
				return l.Sync()
			}
			if err := mustAppendOrFail(); !errors.Is(err, ErrLogFailed) || !errors.Is(err, core.ErrIO) {
				t.Fatalf("%v: got %v, want ErrLogFailed wrapping ErrIO", op, err)
			}
			if _, _, err := l.Append(makeBatch(51, 1, 100, 1000), 0, epoch0); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("%v: a failed log accepted an append: %v", op, err)
			}
			readAll(t, l, 1<<20) // still readable
			l.Close()
			if crash {
				disk.Crash()
			}
			l = mustOpen(t, disk, smallConfig())
			got := idsOf(readAll(t, l, 1<<20))
			if len(got) < len(durable) || !reflect.DeepEqual(got[:len(durable)], durable) || len(got) > len(durable)+1 {
				t.Fatalf("%v crash=%v: recovered %v, durable %v", op, crash, got, durable)
			}
			// Whatever recovery kept is durable now, even if the failed sync lost it.
			disk.Crash()
			l = mustOpen(t, disk, smallConfig())
			if again := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(again, got) {
				t.Fatalf("%v crash=%v: recovered %v, then after a crash %v", op, crash, got, again)
			}
		}
	}
}

// TestRecoveryToleratesReadBitFlips checks that transient bit flips on read
// (the data on the device is intact) never make recovery truncate good data
// or trust a wrong checkpoint, by reopening a log many times on a disk that
// flips a bit in 1% of reads and comparing the recovered layout with the
// original.
func TestRecoveryToleratesReadBitFlips(t *testing.T) {
	disk := sim.NewDisk(core.NewRand(3), sim.DiskOptions{ReadBitFlipProbability: 0.01})
	l := mustOpen(t, disk, smallConfig())
	for i := range 60 {
		mustAppend(t, l, makeBatch(uint64(i), 2, 100, int64(i)), int32(i/10), epoch0)
	}
	segments, epochs := l.Segments(), l.EpochEntries()
	l.Close()
	for i := range 30 {
		if i%2 == 1 {
			// Make recovery validate everything, not only the last segment.
			writeFile(t, disk, testDir+"/"+recoveryPointFile, encodeOffsetCheckpoint(0))
		}
		l, err := Open(disk, testDir, smallConfig(), epoch0)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if !reflect.DeepEqual(l.Segments(), segments) || !epochsEqual(l.EpochEntries(), epochs) || l.LogStartOffset() != 0 {
			t.Fatalf("open %d: segments %v epochs %v, want %v %v", i, l.Segments(), l.EpochEntries(), segments, epochs)
		}
		l.Close()
	}
}

// TestFsyncgateAfterTruncation is a regression test (crash seed 6975): a
// truncation that ends below offset must not leave the recovery point
// checkpoint above the new log end, or recovery after a failed fsync trusts
// data the device lost. It truncates inside a batch, lets the next sync fail
// (the simulated disk then drops the unsynced data at a crash although reads
// still return it), reopens, crashes, and requires what the reopen recovered
// to survive; over 20 disk seeds the fault loses the data about half the time.
func TestFsyncgateAfterTruncation(t *testing.T) {
	for seed := range uint64(20) {
		disk := newDisk(seed)
		l := mustOpen(t, disk, smallConfig())
		mustAppend(t, l, makeBatch(1, 2, 100, 1000), 0, epoch0)
		l.Close() // checkpoints recovery point 2
		l = mustOpen(t, disk, smallConfig())
		if err := l.TruncateTo(1, epoch0); err != nil || l.LogEndOffset() != 0 {
			t.Fatalf("truncate: %v, end %d", err, l.LogEndOffset())
		}
		mustAppend(t, l, makeBatch(2, 1, 100, 1000), 0, epoch0)
		disk.InjectFault(sim.DiskFault{Op: sim.DiskOpSync, Count: 1, Err: core.ErrIO})
		if err := l.Sync(); !errors.Is(err, ErrLogFailed) {
			t.Fatalf("sync: %v", err)
		}
		l.Close()
		l = mustOpen(t, disk, smallConfig())
		recovered := idsOf(readAll(t, l, 1<<20))
		disk.Crash()
		l = mustOpen(t, disk, smallConfig())
		if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, recovered) {
			t.Fatalf("disk seed %d: recovered %v, after a crash %v", seed, recovered, got)
		}
	}
}
