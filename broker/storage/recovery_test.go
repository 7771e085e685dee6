package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core"
	"github.com/kafkasim/kafkasim/sim"
)

// readFile returns a file's current contents.
func readFile(t testing.TB, fsys core.FS, name string) []byte {
	t.Helper()
	data, err := readWholeFile(fsys, name, math.MaxInt32)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return data
}

// writeFile replaces a file's contents durably.
func writeFile(t testing.TB, fsys core.FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.Create(name)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = fsys.SyncDir(path.Dir(name))
	}
	if err != nil {
		t.Fatalf("writing %s: %v", name, err)
	}
}

func exists(fsys core.FS, name string) bool {
	f, err := fsys.Open(name)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// buildLog appends batches of 2 records and 100 payload bytes (161 bytes,
// 6 per segment under smallConfig) with epochs rising every 7 batches and
// timestamps rising by 10, closes the log and returns the ids in order.
func buildLog(t testing.TB, fsys core.FS, batches int) []uint64 {
	t.Helper()
	l := mustOpen(t, fsys, smallConfig())
	var ids []uint64
	for i := range batches {
		mustAppend(t, l, makeBatch(uint64(i), 2, 100, int64(i)*10), int32(i/7), epoch0)
		ids = append(ids, uint64(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func idsOf(batches []storedBatch) []uint64 {
	ids := make([]uint64, len(batches))
	for i, b := range batches {
		ids[i] = b.id
	}
	return ids
}

// TestReopenLoadsIndexes checks that a cleanly closed log reopens with the
// same batches, epochs and indexes, loading the index files of the older
// segments rather than rebuilding them.
func TestReopenLoadsIndexes(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 30 {
		mustAppend(t, l, makeBatch(uint64(i), 2, 100, int64(i)*10), int32(i/7), epoch0)
	}
	var indexes []segmentIndex
	for _, s := range l.segments {
		indexes = append(indexes, s.index)
	}
	epochs, infos := l.EpochEntries(), l.Segments()
	want := idsOf(readAll(t, l, 1<<20))
	l.Close()
	l = mustOpen(t, disk, smallConfig())
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	if !reflect.DeepEqual(l.Segments(), infos) || !epochsEqual(l.EpochEntries(), epochs) {
		t.Fatalf("segments %v epochs %v; want %v %v", l.Segments(), l.EpochEntries(), infos, epochs)
	}
	for i, s := range l.segments {
		if !reflect.DeepEqual(s.index, indexes[i]) {
			t.Fatalf("segment %d index %+v, want %+v", i, s.index, indexes[i])
		}
		if i < len(l.segments)-1 && s.indexStale {
			t.Fatalf("segment %d index was rebuilt, not loaded", i)
		}
	}
}

// TestRecoveryTruncatesTornTail checks that recovery cuts a partial batch
// and garbage off the end of the last segment, by appending them to the
// file directly and reopening.
func TestRecoveryTruncatesTornTail(t *testing.T) {
	for _, tail := range [][]byte{
		makeBatch(99, 1, 100, 0)[:100], // a torn batch
		make([]byte, 300),              // zeros, as after a crash that grew the file
		{1, 2, 3},
	} {
		disk := newDisk(1)
		want := buildLog(t, disk, 20)
		name := segmentFileName(testDir, 36, logSuffix)
		good := readFile(t, disk, name)
		writeFile(t, disk, name, append(append([]byte(nil), good...), tail...))
		l := mustOpen(t, disk, smallConfig())
		if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) {
			t.Fatalf("tail %d bytes: batches %v, want %v", len(tail), got, want)
		}
		l.Close()
		if got := readFile(t, disk, name); !bytes.Equal(got, good) {
			t.Fatalf("tail %d bytes: file not truncated back (%d bytes, want %d)", len(tail), len(got), len(good))
		}
	}
}

// snapshotDir returns the contents of every file in the partition
// directory, by name.
func snapshotDir(t testing.TB, fsys core.FS) map[string][]byte {
	t.Helper()
	entries, err := fsys.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		files[e.Name] = readFile(t, fsys, path.Join(testDir, e.Name))
	}
	return files
}

// flipByte flips the bits mask of the byte at position of a file, durably,
// as corruption at rest does.
func flipByte(t testing.TB, fsys core.FS, name string, position int, mask byte) {
	t.Helper()
	data := readFile(t, fsys, name)
	data[position] ^= mask
	writeFile(t, fsys, name, data)
}

// buildSmallBatches appends batches of one record (161 bytes, 6 per
// segment under smallConfig, so offset o is batch o) and closes the log.
func buildSmallBatches(t testing.TB, fsys core.FS, batches int) {
	t.Helper()
	l := mustOpen(t, fsys, smallConfig())
	for i := range batches {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, int64(i)*10), 0, epoch0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// smallBatchBytes is the size of a batch of buildSmallBatches.
const smallBatchBytes = 161

// Bytes of a batch header that corruption tests flip.
const (
	baseOffsetByte = 4  // bit 24-31 of the base offset: the offset jumps
	lengthByte     = 10 // the batch length: the batch runs into the next
	crcByte        = 18 // inside the CRC field
	payloadByte    = 100
)

// TestRecoveryKeepsSyncedDataOnCorruption is the regression test for a
// storage-level finding of issue 6: a CRC error in an old, synced segment
// (log end 40, seven segments) made recovery cut the log to offset 5 and
// delete the six later segments. Now Open fails with a *CorruptionError
// naming the file, position and offset, and changes no file; once the byte
// is repaired (as a replica would), the log opens whole.
func TestRecoveryKeepsSyncedDataOnCorruption(t *testing.T) {
	disk := newDisk(1)
	buildSmallBatches(t, disk, 40)
	name := segmentFileName(testDir, 0, logSuffix)
	flipByte(t, disk, name, 5*smallBatchBytes+crcByte, 0x40)
	before := snapshotDir(t, disk)
	_, err := Open(disk, testDir, smallConfig(), epoch0)
	var corruption *CorruptionError
	if !errors.Is(err, ErrCorruption) || !errors.As(err, &corruption) {
		t.Fatalf("Open: %v, want ErrCorruption", err)
	}
	if corruption.File != name || corruption.Position != 5*smallBatchBytes || corruption.Offset != 5 {
		t.Fatalf("corruption reported at %s position %d offset %d, want %s 805 offset 5", corruption.File, corruption.Position, corruption.Offset, name)
	}
	if after := snapshotDir(t, disk); !reflect.DeepEqual(after, before) {
		t.Fatalf("a failed Open changed the directory: %d files, had %d", len(after), len(before))
	}
	flipByte(t, disk, name, 5*smallBatchBytes+crcByte, 0x40)
	l := mustOpen(t, disk, smallConfig())
	if l.LogEndOffset() != 40 || len(l.Segments()) != 7 {
		t.Fatalf("after the repair: end %d with %d segments, want 40 and 7", l.LogEndOffset(), len(l.Segments()))
	}
}

// TestCorruptionInFirstOfFifteenSegments flips one byte of a batch in the
// first of 15 synced segments (the finding of issue 6 that stopped the real
// broker): in the batch recovery reads (the last, after the last index
// entry) Open reports ErrCorruption; in a batch it does not read, Open
// succeeds and Scrub reports it. Nothing is ever truncated or deleted.
func TestCorruptionInFirstOfFifteenSegments(t *testing.T) {
	for _, field := range []struct {
		name string
		byte int
	}{{"base offset", baseOffsetByte}, {"length", lengthByte}, {"crc", crcByte}, {"payload", payloadByte}} {
		for _, batch := range []int{1, 5} {
			t.Run(fmt.Sprintf("%s of batch %d", field.name, batch), func(t *testing.T) {
				disk := newDisk(1)
				buildSmallBatches(t, disk, 90)
				flipByte(t, disk, segmentFileName(testDir, 0, logSuffix), batch*smallBatchBytes+field.byte, 0x01)
				before := snapshotDir(t, disk)
				l, err := Open(disk, testDir, smallConfig(), epoch0)
				if batch == 5 {
					if !errors.Is(err, ErrCorruption) {
						t.Fatalf("Open: %v, want ErrCorruption", err)
					}
				} else {
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					if l.LogEndOffset() != 90 || len(l.Segments()) != 15 {
						t.Fatalf("end %d with %d segments", l.LogEndOffset(), len(l.Segments()))
					}
					err = scrubAll(l)
					var corruption *CorruptionError
					if !errors.As(err, &corruption) || corruption.Position != int64(batch)*smallBatchBytes {
						t.Fatalf("Scrub: %v, want corruption at position %d", err, batch*smallBatchBytes)
					}
					l.Close()
				}
				after := snapshotDir(t, disk)
				for name, data := range before {
					if strings.HasSuffix(name, logSuffix) && !bytes.Equal(after[name], data) {
						t.Fatalf("%s changed", name)
					}
				}
			})
		}
	}
}

// scrubAll scrubs the whole log in small steps and returns the first error
// other than an unstable read (read bit flips), which it retries.
func scrubAll(l *Log) error {
	var cursor ScrubCursor
	for range 100_000 {
		next, wrapped, err := l.Scrub(cursor, 300)
		if errors.Is(err, ErrCorruptLog) {
			continue
		}
		if err != nil || wrapped {
			return err
		}
		cursor = next
	}
	return errors.New("scrub did not finish")
}

// TestRecoveryTellsTornTailFromCorruption damages the active segment, whose
// batches are above the checkpointed recovery point unless the case
// checkpoints it, and checks what recovery keeps: a tail with nothing valid
// after the first bad byte is cut in place; a bad batch followed by a valid
// one, or below the checkpointed recovery point, is reported and nothing
// changes; after a recorded failed fsync the range above the checkpoint is
// unknown, so it is cut there.
func TestRecoveryTellsTornTailFromCorruption(t *testing.T) {
	const active = 36 // 40 batches: the last segment holds offsets 36-39
	cases := []struct {
		name        string
		damage      func(t *testing.T, disk *sim.Disk, data []byte) []byte
		checkpoint  bool // the recovery point is checkpointed at the log end
		syncFailed  bool
		wantEnd     int64 // -1: ErrCorruption
		wantCutFrom int64 // position of the cut
	}{
		{name: "zeros after the last batch", damage: func(_ *testing.T, _ *sim.Disk, data []byte) []byte { return append(data, make([]byte, 500)...) }, wantEnd: 40, wantCutFrom: 4 * smallBatchBytes},
		{name: "garbage after the last batch", damage: func(_ *testing.T, _ *sim.Disk, data []byte) []byte {
			return append(data, bytes.Repeat([]byte{2, 0, 0, 0, 1, 2, 3}, 50)...)
		}, wantEnd: 40, wantCutFrom: 4 * smallBatchBytes},
		{name: "torn last batch", damage: func(_ *testing.T, _ *sim.Disk, data []byte) []byte { return data[:3*smallBatchBytes+70] }, wantEnd: 39, wantCutFrom: 3 * smallBatchBytes},
		{name: "bad crc, valid batch after", damage: flipAt(1*smallBatchBytes + crcByte), wantEnd: -1},
		{name: "zeroed batch, valid batch after", damage: func(_ *testing.T, _ *sim.Disk, data []byte) []byte {
			clear(data[smallBatchBytes : 2*smallBatchBytes])
			return data
		}, wantEnd: -1},
		{name: "bad crc in the last batch", damage: flipAt(3*smallBatchBytes + crcByte), wantEnd: 39, wantCutFrom: 3 * smallBatchBytes},
		{name: "bad crc in the last batch, checkpointed", damage: flipAt(3*smallBatchBytes + crcByte), checkpoint: true, wantEnd: -1},
		{name: "bad crc, valid batch after, failed fsync", damage: flipAt(1*smallBatchBytes + crcByte), syncFailed: true, wantEnd: 37, wantCutFrom: smallBatchBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disk := newDisk(1)
			buildSmallBatches(t, disk, 40)
			rp := int64(active)
			if c.checkpoint {
				rp = 40
			}
			writeFile(t, disk, path.Join(testDir, recoveryPointFile), encodeOffsetCheckpoint(rp))
			name := segmentFileName(testDir, active, logSuffix)
			writeFile(t, disk, name, c.damage(t, disk, readFile(t, disk, name)))
			if c.syncFailed {
				if err := RecordSyncFailure(disk, testDir); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotDir(t, disk)
			l, report, err := OpenWithReport(disk, testDir, smallConfig(), epoch0)
			if c.wantEnd < 0 {
				if !errors.Is(err, ErrCorruption) {
					t.Fatalf("Open: %v, want ErrCorruption", err)
				}
				if after := snapshotDir(t, disk); !reflect.DeepEqual(after, before) {
					t.Fatal("a failed Open changed the directory")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if l.LogEndOffset() != c.wantEnd || report.TruncatedFile != name || report.TruncatedPosition != c.wantCutFrom {
				t.Fatalf("end %d, report %+v; want end %d cut at %d", l.LogEndOffset(), report, c.wantEnd, c.wantCutFrom)
			}
			if got := readFile(t, disk, name); !bytes.Equal(got, before[path.Base(name)][:c.wantCutFrom]) {
				t.Fatalf("the segment is not its old prefix (%d bytes)", len(got))
			}
			if report.SyncFailureRecorded != c.syncFailed || (report.CopiedSegments > 0) != c.syncFailed || exists(disk, path.Join(testDir, syncFailedFile)) {
				t.Fatalf("report %+v; the marker left behind: %v", report, exists(disk, path.Join(testDir, syncFailedFile)))
			}
		})
	}
}

// flipAt returns a damage function that flips a bit of the byte at position.
func flipAt(position int) func(*testing.T, *sim.Disk, []byte) []byte {
	return func(_ *testing.T, _ *sim.Disk, data []byte) []byte {
		data[position] ^= 0x40
		return data
	}
}

// TestRecoveryRebuildsBadIndexes checks that missing, wrongly sized,
// garbage and disagreeing index files are detected and rebuilt to exactly
// the index the appends built, and rewritten on disk.
func TestRecoveryRebuildsBadIndexes(t *testing.T) {
	disk := newDisk(1)
	buildLog(t, disk, 30)
	reference := mustOpen(t, disk, smallConfig())
	var want []segmentIndex
	for _, s := range reference.segments {
		want = append(want, s.index)
	}
	reference.Close()
	if len(want) < 5 || len(want[3].offsets) == 0 {
		t.Fatalf("need 5 segments with index entries, have %d", len(want))
	}
	damage := map[string][]byte{
		segmentFileName(testDir, 0, indexSuffix):      nil, // removed below
		segmentFileName(testDir, 12, timeIndexSuffix): bytes.Repeat([]byte{0xff}, 24),
		segmentFileName(testDir, 24, indexSuffix):     {0, 0, 0, 1, 0},
	}
	// Entries that are plausible but point one byte off.
	shifted := readFile(t, disk, segmentFileName(testDir, 36, indexSuffix))
	shifted[len(shifted)-1]++
	damage[segmentFileName(testDir, 36, indexSuffix)] = shifted
	for _, name := range []string{segmentFileName(testDir, 0, indexSuffix), segmentFileName(testDir, 12, timeIndexSuffix), segmentFileName(testDir, 24, indexSuffix), segmentFileName(testDir, 36, indexSuffix)} {
		if damage[name] == nil {
			if err := disk.Remove(name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeFile(t, disk, name, damage[name])
	}
	l := mustOpen(t, disk, smallConfig())
	for i, s := range l.segments {
		if !reflect.DeepEqual(s.index, want[i]) {
			t.Fatalf("segment %d index %+v, want %+v", i, s.index, want[i])
		}
	}
	readAll(t, l, 1)
	if offset, _, ok, err := l.OffsetForTimestamp(135); err != nil || !ok || offset != 28 {
		t.Fatalf("time lookup after rebuild: %d %v %v", offset, ok, err)
	}
	l.Close()
	for i, s := range want[:len(want)-1] {
		base := l.segments[i].baseOffset
		if got := readFile(t, disk, segmentFileName(testDir, base, indexSuffix)); !bytes.Equal(got, s.appendOffsets(nil)) {
			t.Fatalf("segment %d index file not rewritten", i)
		}
		if got := readFile(t, disk, segmentFileName(testDir, base, timeIndexSuffix)); !bytes.Equal(got, s.appendTimes(nil)) {
			t.Fatalf("segment %d time index file not rewritten", i)
		}
	}
}

// TestRecoveryRemovesStrayFiles checks that temporary files and index files
// without a .log are deleted while unrelated files are kept.
func TestRecoveryRemovesStrayFiles(t *testing.T) {
	disk := newDisk(1)
	want := buildLog(t, disk, 8)
	stray := []string{
		path.Join(testDir, recoveryPointFile+tempSuffix),
		segmentFileName(testDir, 500, indexSuffix),
		segmentFileName(testDir, 500, timeIndexSuffix),
	}
	for _, name := range stray {
		writeFile(t, disk, name, []byte("junk"))
	}
	other := path.Join(testDir, "notes.txt")
	writeFile(t, disk, other, []byte("keep me"))
	l := mustOpen(t, disk, smallConfig())
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) {
		t.Fatalf("batches %v", got)
	}
	for _, name := range stray {
		if exists(disk, name) {
			t.Errorf("%s was not removed", name)
		}
	}
	if !exists(disk, other) {
		t.Error("an unrelated file was removed")
	}
}

// TestRecoveryBadCheckpoints checks that garbled checkpoints are not
// trusted: the log is fully validated, the epochs are rebuilt from the
// batches, and nothing is lost.
func TestRecoveryBadCheckpoints(t *testing.T) {
	disk := newDisk(1)
	want := buildLog(t, disk, 30)
	for _, name := range []string{recoveryPointFile, logStartFile, epochFile} {
		writeFile(t, disk, path.Join(testDir, name), []byte("0\ngarbage\n"))
	}
	l := mustOpen(t, disk, smallConfig())
	if got := idsOf(readAll(t, l, 1<<20)); !reflect.DeepEqual(got, want) {
		t.Fatalf("batches %v", got)
	}
	wantEpochs := []EpochEntry{{0, 0}, {1, 14}, {2, 28}, {3, 42}, {4, 56}}
	if e := l.EpochEntries(); !epochsEqual(e, wantEpochs) {
		t.Fatalf("epochs %v, want %v", e, wantEpochs)
	}
	l.Close()
	if _, err := readEpochCheckpoint(disk, testDir); err != nil {
		t.Fatalf("epoch checkpoint not rewritten: %v", err)
	}
}

// TestRecoveryLogStartBeyondEnd checks the state a crash inside
// TruncateFullyAndStartAt can leave (the new log start written, the old
// segments still there): recovery empties the log and starts it there.
func TestRecoveryLogStartBeyondEnd(t *testing.T) {
	disk := newDisk(1)
	buildLog(t, disk, 20)
	writeFile(t, disk, path.Join(testDir, logStartFile), encodeOffsetCheckpoint(1000))
	l := mustOpen(t, disk, smallConfig())
	if l.LogStartOffset() != 1000 || l.LogEndOffset() != 1000 || len(l.Segments()) != 1 || len(l.EpochEntries()) != 0 {
		t.Fatalf("start %d end %d segments %d epochs %v", l.LogStartOffset(), l.LogEndOffset(), len(l.Segments()), l.EpochEntries())
	}
	entries, err := disk.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if base, _, ok := parseSegmentFileName(e.Name); ok && base != 1000 {
			t.Errorf("old segment file %s left behind", e.Name)
		}
	}
}

// TestTornTailDecisionUnderReadFlips checks that read bit flips cannot
// change what recovery decides: on a disk that flips a bit in 5% of reads,
// a bad batch followed by a valid one is always reported (or the reads are
// reported unstable), never cut, and a zero tail is always cut at the same
// place.
func TestTornTailDecisionUnderReadFlips(t *testing.T) {
	for _, corrupt := range []bool{true, false} {
		disk := sim.NewDisk(core.NewRand(11), sim.DiskOptions{ReadBitFlipProbability: 0.05})
		buildSmallBatches(t, disk, 40)
		name := segmentFileName(testDir, 36, logSuffix)
		data := readFile(t, disk, name)
		if corrupt {
			data[smallBatchBytes+crcByte] ^= 0x40
		} else {
			data = append(data, make([]byte, 400)...)
		}
		decided := 0
		for i := range 40 {
			writeFile(t, disk, name, data)
			writeFile(t, disk, path.Join(testDir, recoveryPointFile), encodeOffsetCheckpoint(36))
			l, err := Open(disk, testDir, smallConfig(), epoch0)
			if err == nil || errors.Is(err, ErrCorruption) {
				decided++
			}
			switch {
			case corrupt && (errors.Is(err, ErrCorruption) || errors.Is(err, ErrCorruptLog)):
			case corrupt:
				t.Fatalf("open %d of a corrupt segment: %v", i, err)
			case errors.Is(err, ErrCorruptLog):
			case err != nil:
				t.Fatalf("open %d of a torn tail: %v", i, err)
			case l.LogEndOffset() != 40:
				t.Fatalf("open %d cut the torn tail to end %d, want 40", i, l.LogEndOffset())
			}
			if l != nil {
				l.Close()
			}
		}
		if decided < 20 {
			t.Fatalf("corrupt=%v: only %d of 40 opens got past unstable reads", corrupt, decided)
		}
	}
}

// TestScrubResumesAfterTruncation checks that a cursor from before a
// truncation and new appends, which may point inside a batch now, does not
// make Scrub report corruption, and that Scrub still finds real damage.
func TestScrubResumesAfterTruncation(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 40 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 0, epoch0)
	}
	var cursor ScrubCursor
	for cursor.segmentBase < 36 || cursor.position < 3*smallBatchBytes {
		next, wrapped, err := l.Scrub(cursor, 1)
		if err != nil || wrapped {
			t.Fatalf("Scrub: %v, wrapped %v", err, wrapped)
		}
		cursor = next
	}
	if err := l.TruncateTo(37, epoch0); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustAppend(t, l, makeBatch(uint64(100+i), 1, 37, 1000), 0, epoch0) // 98 bytes
	}
	for {
		next, wrapped, err := l.Scrub(cursor, 1)
		if err != nil {
			t.Fatalf("Scrub after the truncation: %v", err)
		}
		if wrapped {
			break
		}
		cursor = next
	}
	l.Close()
	flipByte(t, disk, segmentFileName(testDir, 0, logSuffix), smallBatchBytes+payloadByte, 0x01)
	l = mustOpen(t, disk, smallConfig())
	if err := scrubAll(l); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Scrub of a damaged log: %v", err)
	}
}
