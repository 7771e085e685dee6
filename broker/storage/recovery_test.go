package storage

import (
	"bytes"
	"math"
	"path"
	"reflect"
	"testing"

	"github.com/kafkasim/kafkasim/core"
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

// TestRecoveryCutsAtCorruptBatch checks that a CRC error inside the
// validated range truncates the log at that batch and drops the later
// segments, by flipping a byte in segment 1 of 4 and forcing a full scan with
// a recovery point of 0.
func TestRecoveryCutsAtCorruptBatch(t *testing.T) {
	disk := newDisk(1)
	buildLog(t, disk, 20)
	name := segmentFileName(testDir, 12, logSuffix)
	data := readFile(t, disk, name)
	data[2*161+100] ^= 0x40 // inside the third batch of the segment: offset 16
	writeFile(t, disk, name, data)
	writeFile(t, disk, path.Join(testDir, recoveryPointFile), encodeOffsetCheckpoint(0))
	l := mustOpen(t, disk, smallConfig())
	if l.LogEndOffset() != 16 || len(l.Segments()) != 2 {
		t.Fatalf("end %d with %d segments, want 16 and 2", l.LogEndOffset(), len(l.Segments()))
	}
	if got := idsOf(readAll(t, l, 1<<20)); len(got) != 8 || got[7] != 7 {
		t.Fatalf("batches %v", got)
	}
	if exists(disk, segmentFileName(testDir, 24, logSuffix)) || exists(disk, segmentFileName(testDir, 36, logSuffix)) {
		t.Fatal("the segment after the corruption was not deleted")
	}
	// Epochs that started after the cut are gone (epoch 2 started at 28).
	if e := l.EpochEntries(); !epochsEqual(e, []EpochEntry{{0, 0}, {1, 14}}) {
		t.Fatalf("epochs %v", e)
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
