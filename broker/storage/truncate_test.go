package storage

import (
	"math"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestTruncateTo checks follower truncation: to an offset inside a batch
// (the whole batch goes, Kafka's rule), to a segment boundary, beyond the
// end (no-op), below the start (restart there), and that the epoch cache and
// the recovery point follow, by comparing the surviving batches with the
// expected prefix and reopening.
func TestTruncateTo(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 20 {
		mustAppend(t, l, makeBatch(uint64(i), 3, 100, 1000), int32(i/5), epoch0)
	}
	if err := l.TruncateTo(100, epoch0); err != nil || l.LogEndOffset() != 60 {
		t.Fatalf("truncate beyond the end: %v, end %d", err, l.LogEndOffset())
	}
	// Offset 40 is inside batch 13 ([39, 41]): the log ends at 39.
	if err := l.TruncateTo(40, epoch0); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 39 || l.RecoveryPoint() != 39 {
		t.Fatalf("end %d recovery point %d, want 39", l.LogEndOffset(), l.RecoveryPoint())
	}
	wantEpochs := []EpochEntry{{0, 0}, {1, 15}, {2, 30}}
	if got := l.EpochEntries(); !epochsEqual(got, wantEpochs) {
		t.Fatalf("epochs %v, want %v", got, wantEpochs)
	}
	// Offset 18 starts segment 1 (6 batches of 3 per segment), which stays,
	// empty, as in Kafka.
	if err := l.TruncateTo(18, epoch0); err != nil {
		t.Fatal(err)
	}
	if s := l.Segments(); l.LogEndOffset() != 18 || len(s) != 2 || s[1].SizeBytes != 0 {
		t.Fatalf("end %d with segments %v, want 18 and an empty second", l.LogEndOffset(), s)
	}
	if got := readAll(t, l, 1<<20); len(got) != 6 || got[5].id != 5 {
		t.Fatalf("survivors %v", got)
	}
	// Appending continues at the new end, in a new epoch.
	base, _ := mustAppend(t, l, makeBatch(99, 1, 10, 1000), 9, epoch0)
	if base != 18 {
		t.Fatalf("append after truncation at %d, want 18", base)
	}
	l.Close()
	l = mustOpen(t, disk, smallConfig())
	got := readAll(t, l, 1<<20)
	if len(got) != 7 || got[6].id != 99 || l.LogEndOffset() != 19 {
		t.Fatalf("after reopen: %d batches, end %d", len(got), l.LogEndOffset())
	}
	if e := l.EpochEntries(); !epochsEqual(e, []EpochEntry{{0, 0}, {1, 15}, {9, 18}}) {
		t.Fatalf("epochs after reopen %v", e)
	}
}

// TestTruncateFullyAndStartAt checks that the log restarts empty at the
// given offset, durably, with an empty epoch cache, by truncating a
// multi-segment log, appending, and reopening.
func TestTruncateFullyAndStartAt(t *testing.T) {
	disk := newDisk(1)
	l := mustOpen(t, disk, smallConfig())
	for i := range 20 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 1000), 3, epoch0)
	}
	if err := l.TruncateFullyAndStartAt(1000, epoch0); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 1000 || l.LogEndOffset() != 1000 || l.Size() != 0 || len(l.EpochEntries()) != 0 {
		t.Fatalf("start %d end %d size %d epochs %v", l.LogStartOffset(), l.LogEndOffset(), l.Size(), l.EpochEntries())
	}
	if base, _ := mustAppend(t, l, makeBatch(7, 2, 10, 1000), 4, epoch0); base != 1000 {
		t.Fatalf("append at %d", base)
	}
	l.Close()
	l = mustOpen(t, disk, smallConfig())
	if got := readAll(t, l, 100); len(got) != 1 || got[0].id != 7 || got[0].header.BaseOffset != 1000 {
		t.Fatalf("after reopen %v", got)
	}
	// Truncating below the start restarts the log there too.
	if err := l.TruncateTo(5, epoch0); err != nil || l.LogStartOffset() != 5 || l.LogEndOffset() != 5 {
		t.Fatalf("truncate below start: %v start %d end %d", err, l.LogStartOffset(), l.LogEndOffset())
	}
}

func epochsEqual(a, b []EpochEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEndOffsetForEpoch checks Kafka's OffsetForLeaderEpoch answers for
// epochs before, between, at and after the known ones.
func TestEndOffsetForEpoch(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	if e, o := l.EndOffsetForEpoch(0); e != UndefinedEpoch || o != UndefinedOffset {
		t.Fatalf("empty log: %d %d", e, o)
	}
	for i, epoch := range []int32{2, 2, 5, 5, 5, 8} {
		mustAppend(t, l, makeBatch(uint64(i), 2, 10, 1000), epoch, epoch0)
	}
	// Epoch 2 starts at 0, 5 at 4, 8 at 10; the log ends at 12.
	cases := []struct {
		requested, epoch int32
		offset           int64
	}{
		{-1, UndefinedEpoch, UndefinedOffset},
		{0, 0, 0}, {1, 1, 0},
		{2, 2, 4}, {3, 2, 4}, {4, 2, 4},
		{5, 5, 10}, {7, 5, 10},
		{8, 8, 12},
		{9, UndefinedEpoch, UndefinedOffset},
	}
	for _, tc := range cases {
		e, o := l.EndOffsetForEpoch(tc.requested)
		if e != tc.epoch || o != tc.offset {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.requested, e, o, tc.epoch, tc.offset)
		}
	}
}

// TestEpochCacheTruncateFromStart checks that retention moves the first
// epoch's start up to the log start and drops epochs wholly before it.
func TestEpochCacheTruncateFromStart(t *testing.T) {
	c := epochCache{entries: []EpochEntry{{1, 0}, {3, 10}, {4, 20}}}
	if !c.truncateFromStart(15) || !epochsEqual(c.entries, []EpochEntry{{3, 15}, {4, 20}}) {
		t.Fatalf("got %v", c.entries)
	}
	if c.truncateFromStart(15) {
		t.Fatal("a no-op truncation reported a change")
	}
	decoded, err := decodeEpochs(c.encode())
	if err != nil || !epochsEqual(decoded.entries, c.entries) {
		t.Fatalf("round trip: %v %v", decoded.entries, err)
	}
	for _, bad := range []string{"", "0\n", "0\n2\n1 5\n", "0\n2\n3 5\n1 9\n", "1\n0\n", "0\n1\nx 1\n"} {
		if _, err := decodeEpochs([]byte(bad)); !isErr(err, errBadCheckpoint) {
			t.Errorf("decoded garbage %q: %v", bad, err)
		}
	}
}

// TestAppendReplicated checks the follower append: offsets are kept (gaps
// allowed), epochs from the batches fill the cache, and bad input (an offset
// below the end, a decreasing epoch, a corrupt batch in the middle) is
// rejected before anything is written.
func TestAppendReplicated(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	leaderBatch := func(id uint64, base int64, records int, epoch int32) []byte {
		b := makeBatch(id, records, 40, 1000)
		record.SetBaseOffset(b, base)
		record.SetPartitionLeaderEpoch(b, epoch)
		return b
	}
	var fetched []byte
	fetched = append(fetched, leaderBatch(1, 0, 3, 1)...)
	fetched = append(fetched, leaderBatch(2, 3, 2, 1)...)
	fetched = append(fetched, leaderBatch(3, 10, 1, 4)...) // a gap, as after compaction
	last, err := l.AppendReplicated(fetched, epoch0)
	if err != nil || last != 10 || l.LogEndOffset() != 11 {
		t.Fatalf("got last %d end %d: %v", last, l.LogEndOffset(), err)
	}
	if e := l.EpochEntries(); !epochsEqual(e, []EpochEntry{{1, 0}, {4, 10}}) {
		t.Fatalf("epochs %v", e)
	}
	got, err := l.Read(5, 1<<20, math.MaxInt64, nil)
	if err != nil || batchID(got) != 3 {
		t.Fatalf("read in the gap: %v", err)
	}
	corrupt := leaderBatch(6, 12, 1, 4)
	corrupt[70] ^= 0xff
	bad := map[string][]byte{
		"below end":      leaderBatch(4, 10, 1, 4),
		"stale epoch":    leaderBatch(5, 11, 1, 3),
		"corrupt middle": append(append(leaderBatch(7, 11, 1, 4), corrupt...), leaderBatch(8, 13, 1, 4)...),
		"partial":        leaderBatch(9, 11, 1, 4)[:70],
		"out of order":   append(leaderBatch(10, 20, 1, 4), leaderBatch(11, 15, 1, 4)...),
	}
	for _, name := range []string{"below end", "stale epoch", "corrupt middle", "partial", "out of order"} {
		size := l.Size()
		if _, err := l.AppendReplicated(bad[name], epoch0); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if l.Size() != size || l.LogEndOffset() != 11 {
			t.Errorf("%s: the log changed", name)
		}
	}
}

// TestAppendAllocatesNothing checks that the leader append path allocates
// nothing per call in the steady state, with index entries being added, by
// measuring with testing.AllocsPerRun on one reused batch buffer.
func TestAppendAllocatesNothing(t *testing.T) {
	config := DefaultConfig()
	config.IndexIntervalBytes = 0 // an index entry for every batch
	l := mustOpen(t, newDisk(1), config)
	batch := makeBatch(1, 10, 1000, 1000)
	for range 100 { // let the index slices grow first
		mustAppend(t, l, batch, 1, epoch0)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := l.Append(batch, 1, epoch0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %.2f times per call", allocs)
	}
	buf := make([]byte, 0, 64<<10)
	allocs = testing.AllocsPerRun(1000, func() {
		var err error
		if buf, err = l.Read(500, 32<<10, math.MaxInt64, buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Read allocates %.2f times per call", allocs)
	}
}

// TestFlushIntervalMessages checks that the log syncs by itself after the
// configured number of records, by watching the recovery point.
func TestFlushIntervalMessages(t *testing.T) {
	config := smallConfig()
	config.FlushIntervalMessages = 5
	l := mustOpen(t, newDisk(1), config)
	mustAppend(t, l, makeBatch(1, 3, 10, 1000), 0, epoch0)
	if l.RecoveryPoint() != 0 {
		t.Fatalf("synced after 3 records: recovery point %d", l.RecoveryPoint())
	}
	mustAppend(t, l, makeBatch(2, 2, 10, 1000), 0, epoch0)
	if l.RecoveryPoint() != 5 {
		t.Fatalf("not synced after 5 records: recovery point %d", l.RecoveryPoint())
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}
