package storage

import (
	"errors"
	"math"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestReadNeverServesCorruptBatches corrupts one payload byte of a synced
// batch at rest: every read that would serve it fails with a
// *CorruptionError naming the file and offset, reads of the batches
// before it still succeed, and nothing is truncated.
func TestReadNeverServesCorruptBatches(t *testing.T) {
	disk := newDisk(11)
	l := mustOpen(t, disk, smallConfig())
	var bases []int64
	for i := range 6 {
		base, _ := mustAppend(t, l, makeBatch(uint64(i), 2, 40, int64(i)), 0, at(int64(i)))
		bases = append(bases, base)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segment := l.Segments()[len(l.Segments())-1]
	// The fourth batch: find its position by reading the first three.
	before, err := l.Read(segment.BaseOffset, math.MaxInt32, bases[3], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments()) != 1 {
		t.Fatalf("%d segments, want 1 for this test", len(l.Segments()))
	}
	position := int64(len(before)) + record.HeaderBytes + 3
	if err := disk.Corrupt(segmentFileName(testDir, segment.BaseOffset, logSuffix), position, 1); err != nil {
		t.Fatal(err)
	}
	_, err = l.Read(bases[3], 1<<20, math.MaxInt64, nil)
	var corruption *CorruptionError
	if !errors.As(err, &corruption) || corruption.Offset != bases[3] {
		t.Fatalf("read of the corrupt batch: %v, want a CorruptionError at offset %d", err, bases[3])
	}
	if got, err := l.Read(bases[0], 1<<20, bases[3], nil); err != nil || len(got) != len(before) {
		t.Fatalf("read below the corruption: %v, %d bytes, want %d", err, len(got), len(before))
	}
	if end := l.LogEndOffset(); end != bases[5]+2 {
		t.Fatalf("log end %d after a corrupt read, want %d: nothing may be cut", end, bases[5]+2)
	}
}
