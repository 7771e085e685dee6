package storage

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/core/record"
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

// TestReadRejectsFlippedHeaders checks that Read on a disk that flips a bit
// in 5% of reads returns either ErrCorruptLog or batches whose fields
// outside the CRC (base offset, leader epoch) are those that were appended:
// it appends batches of several epochs across many segments, then reads
// every offset many times and compares each CRC-valid batch it gets with
// what was appended. Batches with a bad CRC are the consumer's to reject.
func TestReadRejectsFlippedHeaders(t *testing.T) {
	disk := sim.NewDisk(core.NewRand(5), sim.DiskOptions{ReadBitFlipProbability: 0.05})
	l := mustOpen(t, disk, smallConfig())
	type appended struct {
		base  int64
		epoch int32
	}
	byID := map[uint64]appended{}
	for i := range 120 {
		batch := makeBatch(uint64(i), 1+i%4, 60+i%150, int64(i))
		base, _ := mustAppend(t, l, batch, int32(i/25), epoch0)
		byID[uint64(i)] = appended{base: base, epoch: int32(i / 25)}
	}
	rand := core.NewRand(9)
	var corrupt, checked int
	var buf []byte
	for range 20_000 {
		offset := rand.Int64Range(0, l.LogEndOffset()-1)
		var err error
		buf, err = l.Read(offset, 1+rand.IntN(1500), math.MaxInt64, buf[:0])
		if errors.Is(err, ErrCorruptLog) {
			corrupt++
			continue
		}
		if err != nil || len(buf) == 0 {
			t.Fatalf("Read(%d): %v, %d bytes", offset, err, len(buf))
		}
		for rest := buf; len(rest) > 0; {
			size, err := record.BatchSize(rest)
			if err != nil || size > len(rest) {
				t.Fatalf("Read(%d) returned a partial batch", offset)
			}
			if h, err := record.Validate(rest[:size]); err == nil {
				want := byID[batchID(rest[:size])]
				if h.BaseOffset != want.base || h.PartitionLeaderEpoch != want.epoch {
					t.Fatalf("Read(%d) returned batch at %d epoch %d, appended at %d epoch %d",
						offset, h.BaseOffset, h.PartitionLeaderEpoch, want.base, want.epoch)
				}
				checked++
			}
			rest = rest[size:]
		}
	}
	if corrupt == 0 || checked == 0 {
		t.Fatalf("%d corrupt reads, %d batches checked: the test exercised nothing", corrupt, checked)
	}
	t.Logf("%d reads reported ErrCorruptLog, %d batches checked", corrupt, checked)
}

// TestRetentionFreesFullDisk checks that retention frees space on a disk
// with zero bytes free (it used to write the log start checkpoint first and
// failed with ENOSPC before deleting anything), that appends then work, and
// that the result survives a crash.
func TestRetentionFreesFullDisk(t *testing.T) {
	disk := newDisk(1)
	config := smallConfig()
	config.RetentionBytes = 2000
	l := mustOpen(t, disk, config)
	for i := range 40 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	disk.SetCapacity(disk.UsedBytes())
	if _, _, err := l.Append(makeBatch(40, 1, 100, 1000), 0, epoch0); !errors.Is(err, core.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v", err)
	}
	usedBefore := disk.UsedBytes()
	deleted, err := l.DeleteOldSegments(epoch0)
	if err != nil || deleted == 0 || disk.UsedBytes() >= usedBefore {
		t.Fatalf("retention on a full disk: %d deleted, %v; used %d bytes, was %d", deleted, err, disk.UsedBytes(), usedBefore)
	}
	start := l.LogStartOffset()
	if start != l.Segments()[0].BaseOffset || start == 0 {
		t.Fatalf("log start %d, first segment %d", start, l.Segments()[0].BaseOffset)
	}
	mustAppend(t, l, makeBatch(41, 1, 100, 1000), 0, epoch0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	want := idsOf(readAll(t, l, 1<<20))
	disk.Crash()
	l = mustOpen(t, disk, config)
	if got := idsOf(readAll(t, l, 1<<20)); l.LogStartOffset() != start || !reflect.DeepEqual(got, want) {
		t.Fatalf("after a crash: start %d batches %v, want %d %v", l.LogStartOffset(), got, start, want)
	}
}

// TestRetentionInterrupted fails retention at each of its removals and
// directory syncs, crashes, and checks that recovery finds a log that
// starts at its first surviving segment, has no hole, and lost nothing at
// or after that start.
func TestRetentionInterrupted(t *testing.T) {
	for _, op := range []sim.DiskOp{sim.DiskOpRemove, sim.DiskOpSyncDir} {
		for after := range 12 {
			disk := newDisk(uint64(after))
			config := smallConfig()
			config.RetentionBytes = 1000
			l := mustOpen(t, disk, config)
			for i := range 40 {
				mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			all := readAll(t, l, 1<<20)
			disk.InjectFault(sim.DiskFault{Op: op, After: after, Count: 1, Err: core.ErrIO})
			_, err := l.DeleteOldSegments(epoch0)
			disk.ClearFaults()
			disk.Crash()
			l = mustOpen(t, disk, config)
			segments := l.Segments()
			if l.LogStartOffset() != segments[0].BaseOffset {
				t.Fatalf("%v after %d (%v): log start %d, first segment %d", op, after, err, l.LogStartOffset(), segments[0].BaseOffset)
			}
			for i := 1; i < len(segments); i++ {
				if segments[i].BaseOffset != segments[i-1].NextOffset {
					t.Fatalf("%v after %d: a hole between segments %v", op, after, segments)
				}
			}
			got := readAll(t, l, 1<<20)
			if want := all[len(all)-len(got):]; !reflect.DeepEqual(idsOf(got), idsOf(want)) || l.LogEndOffset() != 40 {
				t.Fatalf("%v after %d: batches %v, want the suffix %v", op, after, idsOf(got), idsOf(want))
			}
		}
	}
}

// TestRestartOnNearlyFullDisk checks that a broker restarts on a disk with
// no free bytes after an unclean stop: recovery syncs unsynced segments
// instead of copying them (which needed a segment of free space) and
// tolerates failed index and checkpoint writes. It kills the process (page
// cache kept) and, separately, crashes the machine with a torn tail, with
// an index file missing so that recovery wants to write it.
func TestRestartOnNearlyFullDisk(t *testing.T) {
	for _, crash := range []bool{false, true} {
		disk := sim.NewDisk(core.NewRand(4), sim.DiskOptions{TornWriteProbability: 1})
		buildSmallBatches(t, disk, 20)
		l := mustOpen(t, disk, smallConfig())
		for i := range 10 {
			mustAppend(t, l, makeBatch(uint64(100+i), 1, 100, 1000), 0, epoch0)
		}
		if err := disk.Remove(segmentFileName(testDir, 6, indexSuffix)); err != nil {
			t.Fatal(err)
		}
		if err := disk.SyncDir(testDir); err != nil {
			t.Fatal(err)
		}
		if crash {
			disk.Crash()
		}
		disk.SetCapacity(disk.UsedBytes())
		l, report, err := OpenWithReport(disk, testDir, smallConfig(), epoch0)
		if err != nil {
			t.Fatalf("crash=%v: Open on a full disk: %v", crash, err)
		}
		if report.CopiedSegments != 0 || l.LogEndOffset() < 20 || (!crash && l.LogEndOffset() != 30) {
			t.Fatalf("crash=%v: end %d, report %+v", crash, l.LogEndOffset(), report)
		}
		if crash && report.TruncatedFile == "" && l.LogEndOffset() < 30 {
			t.Fatalf("a torn tail was not reported: %+v", report)
		}
		recovered := idsOf(readAll(t, l, 1<<20))
		disk.SetCapacity(0)
		disk.Crash()
		l = mustOpen(t, disk, smallConfig())
		if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, recovered) {
			t.Fatalf("crash=%v: what recovery kept was not durable: %v, then %v", crash, recovered, got)
		}
	}
}

// TestRecoveryCopiesAfterFailedSync checks that an unclean restart copies
// the segment holding data past the checkpointed recovery point (a failed
// fsync may have gone unrecorded; see TestCleanShutdownRecorded for the
// clean case), and that a failed fsync is recorded durably (the record
// survives a crash) so that the next recovery copies the segment whose
// content it made unknown, then removes the record; what that recovery kept
// survives a crash.
func TestRecoveryCopiesAfterFailedSync(t *testing.T) {
	for _, crash := range []bool{false, true} {
		disk := newDisk(2)
		l := mustOpen(t, disk, smallConfig())
		for i := range 8 {
			mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
		}
		// A kill: reopen without Close.
		l, report, err := OpenWithReport(disk, testDir, smallConfig(), epoch0)
		if err != nil || report.CopiedSegments != 1 || report.SyncFailureRecorded || l.LogEndOffset() != 8 {
			t.Fatalf("unclean restart: %v, report %+v, end %d", err, report, l.LogEndOffset())
		}
		mustAppend(t, l, makeBatch(8, 1, 100, 1000), 0, epoch0)
		disk.InjectFault(sim.DiskFault{Op: sim.DiskOpSync, Count: 1, Err: core.ErrIO})
		if err := l.Sync(); !errors.Is(err, ErrLogFailed) {
			t.Fatalf("sync: %v", err)
		}
		l.Close()
		if crash {
			disk.Crash()
		}
		if !exists(disk, testDir+"/"+syncFailedFile) {
			t.Fatalf("crash=%v: the failed fsync was not recorded durably", crash)
		}
		l, report, err = OpenWithReport(disk, testDir, smallConfig(), epoch0)
		// Without a crash the unsynced batch is still readable and must be
		// copied; after one it survived only if the failed fsync wrote it.
		if err != nil || !report.SyncFailureRecorded || (!crash && report.CopiedSegments != 1) {
			t.Fatalf("crash=%v: restart after a failed fsync: %v, report %+v", crash, err, report)
		}
		if exists(disk, testDir+"/"+syncFailedFile) {
			t.Fatal("the record of the failed fsync outlived the copy")
		}
		recovered := idsOf(readAll(t, l, 1<<20))
		disk.Crash()
		l = mustOpen(t, disk, smallConfig())
		if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, recovered) || len(got) < 8 {
			t.Fatalf("crash=%v: recovered %v, after a crash %v", crash, recovered, got)
		}
	}
}
