package storage

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestConfigValidate checks that every out-of-range field is rejected with
// an error naming it, and that the defaults pass, by validating a table of
// configs that each break one field.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	cases := []struct {
		field  string
		modify func(*Config)
	}{
		{"SegmentBytesMax", func(c *Config) { c.SegmentBytesMax = 10 }},
		{"SegmentBytesMax", func(c *Config) { c.SegmentBytesMax = 1 << 40 }},
		{"SegmentAgeMsMax", func(c *Config) { c.SegmentAgeMsMax = 0 }},
		{"IndexIntervalBytes", func(c *Config) { c.IndexIntervalBytes = -1 }},
		{"IndexBytesMax", func(c *Config) { c.IndexBytesMax = 4 }},
		{"RetentionBytes", func(c *Config) { c.RetentionBytes = -2 }},
		{"RetentionMs", func(c *Config) { c.RetentionMs = -5 }},
		{"FlushIntervalMessages", func(c *Config) { c.FlushIntervalMessages = 0 }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.modify(&c)
		err := c.Validate()
		if !isErr(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want ErrConfig naming the field", tc.field, err)
		}
		if _, err := Open(newDisk(1), testDir, c, epoch0); !isErr(err, ErrConfig) {
			t.Errorf("%s: Open accepted the bad config: %v", tc.field, err)
		}
	}
}

// TestAppendAssignsOffsetsAndEpoch checks that Append gives consecutive
// offsets, stamps base offset and leader epoch into the caller's slice, and
// that Read returns the same bytes, by appending three batches and reading
// them back.
func TestAppendAssignsOffsetsAndEpoch(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	sizes := []int{1, 5, 3}
	next := int64(0)
	var stored [][]byte
	for i, n := range sizes {
		batch := makeBatch(uint64(i), n, 40, 1000)
		base, last := mustAppend(t, l, batch, 7, epoch0)
		if base != next || last != next+int64(n)-1 {
			t.Fatalf("batch %d: got [%d, %d], want [%d, %d]", i, base, last, next, next+int64(n)-1)
		}
		h, err := record.Validate(batch)
		if err != nil || h.BaseOffset != base || h.PartitionLeaderEpoch != 7 {
			t.Fatalf("batch %d not stamped in place: %+v %v", i, h, err)
		}
		stored = append(stored, batch)
		next = last + 1
	}
	if l.LogEndOffset() != 9 {
		t.Fatalf("log end %d, want 9", l.LogEndOffset())
	}
	got, err := l.Read(0, 1<<20, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Join(stored, nil)) {
		t.Fatalf("read back %d bytes that differ from the %d appended", len(got), len(bytes.Join(stored, nil)))
	}
	if e := l.EpochEntries(); len(e) != 1 || e[0] != (EpochEntry{Epoch: 7, StartOffset: 0}) {
		t.Fatalf("epoch cache %v", e)
	}
}

// TestAppendRejectsBadInput checks that malformed batches, oversize batches
// and stale epochs get the documented errors and change nothing, by
// appending each after one good batch and comparing the log before/after.
func TestAppendRejectsBadInput(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	mustAppend(t, l, makeBatch(1, 2, 40, 1000), 5, epoch0)
	badCRC := makeBatch(2, 1, 40, 1000)
	badCRC[len(badCRC)-1] ^= 1
	cases := []struct {
		name  string
		batch []byte
		epoch int32
		want  error
	}{
		{"crc", badCRC, 5, ErrCorruptBatch},
		{"truncated", makeBatch(3, 1, 40, 1000)[:80], 5, ErrCorruptBatch},
		{"extra bytes", append(makeBatch(4, 1, 40, 1000), 0), 5, ErrCorruptBatch},
		{"empty", nil, 5, ErrCorruptBatch},
		{"too large", makeBatch(5, 1, 2000, 1000), 5, ErrBatchTooLarge},
		{"stale epoch", makeBatch(6, 1, 40, 1000), 4, ErrStaleEpoch},
		{"negative epoch", makeBatch(7, 1, 40, 1000), -1, ErrStaleEpoch},
	}
	for _, tc := range cases {
		size, end := l.Size(), l.LogEndOffset()
		_, _, err := l.Append(tc.batch, tc.epoch, epoch0)
		if !isErr(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if l.Size() != size || l.LogEndOffset() != end {
			t.Errorf("%s: log changed: size %d->%d end %d->%d", tc.name, size, l.Size(), end, l.LogEndOffset())
		}
	}
	if got := readAll(t, l, 1<<20); len(got) != 1 || got[0].id != 1 {
		t.Fatalf("log holds %v, want only batch 1", got)
	}
}

// TestAppendValidatedMatchesAppend checks that AppendValidated, which
// leaves the CRC to its caller, stores exactly what Append stores (offsets,
// epochs, bytes, segments) on a log that rolls, and still refuses what
// its framing check covers with Append's errors, changing nothing.
func TestAppendValidatedMatchesAppend(t *testing.T) {
	checked, trusted := mustOpen(t, newDisk(1), smallConfig()), mustOpen(t, newDisk(1), smallConfig())
	for i := range 20 {
		epoch := int32(i / 7)
		a, b := makeBatch(uint64(i), 1+i%4, 30+10*i, 1000), makeBatch(uint64(i), 1+i%4, 30+10*i, 1000)
		base, last := mustAppend(t, checked, a, epoch, at(int64(i)))
		gotBase, gotLast, err := trusted.AppendValidated(b, epoch, at(int64(i)))
		if err != nil || gotBase != base || gotLast != last || !bytes.Equal(a, b) {
			t.Fatalf("batch %d: AppendValidated [%d, %d] %v, Append [%d, %d]; stamped alike: %v", i, gotBase, gotLast, err, base, last, bytes.Equal(a, b))
		}
	}
	want, err := checked.Read(0, 1<<20, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := trusted.Read(0, 1<<20, math.MaxInt64, nil)
	if err != nil || !bytes.Equal(got, want) || len(trusted.Segments()) != len(checked.Segments()) || len(checked.Segments()) < 3 {
		t.Fatalf("logs differ: %d and %d bytes (%v), %d and %d segments", len(got), len(want), err, len(trusted.Segments()), len(checked.Segments()))
	}
	cases := []struct {
		name  string
		batch []byte
		epoch int32
		want  error
	}{
		{"truncated", makeBatch(3, 1, 40, 1000)[:80], 5, ErrCorruptBatch},
		{"extra bytes", append(makeBatch(4, 1, 40, 1000), 0), 5, ErrCorruptBatch},
		{"empty", nil, 5, ErrCorruptBatch},
		{"too large", makeBatch(5, 1, 2000, 1000), 5, ErrBatchTooLarge},
		{"stale epoch", makeBatch(6, 1, 40, 1000), 1, ErrStaleEpoch},
		{"negative epoch", makeBatch(7, 1, 40, 1000), -1, ErrStaleEpoch},
	}
	for _, tc := range cases {
		size, end := trusted.Size(), trusted.LogEndOffset()
		if _, _, err := trusted.AppendValidated(tc.batch, tc.epoch, epoch0); !isErr(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if trusted.Size() != size || trusted.LogEndOffset() != end {
			t.Errorf("%s: log changed: size %d->%d end %d->%d", tc.name, size, trusted.Size(), end, trusted.LogEndOffset())
		}
	}
}

// TestReadRules checks Read's contract: out-of-range offsets, the empty
// read at the log end, a read from the middle of a batch, the one-batch
// minimum, the maxBytes limit, the maxOffset bound and the segment boundary,
// on a log of known batches spread over several segments.
func TestReadRules(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	// Batches of 3 records and 161 bytes: 6 per 1024-byte segment.
	for i := range 20 {
		mustAppend(t, l, makeBatch(uint64(i), 3, 100, 1000), 0, epoch0)
	}
	if n := len(l.Segments()); n < 3 {
		t.Fatalf("expected several segments, got %d", n)
	}
	if _, err := l.Read(-1, 100, math.MaxInt64, nil); !isErr(err, ErrOffsetOutOfRange) {
		t.Errorf("offset -1: %v", err)
	}
	if _, err := l.Read(61, 100, math.MaxInt64, nil); !isErr(err, ErrOffsetOutOfRange) {
		t.Errorf("offset past the end: %v", err)
	}
	if got, err := l.Read(60, 100, math.MaxInt64, nil); err != nil || len(got) != 0 {
		t.Errorf("read at the end: %d bytes, %v", len(got), err)
	}
	check := func(name string, offset int64, maxBytes int, maxOffset int64, wantIDs ...uint64) {
		t.Helper()
		got, err := l.Read(offset, maxBytes, maxOffset, []byte("prefix"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.HasPrefix(got, []byte("prefix")) {
			t.Fatalf("%s: Read did not append to buf", name)
		}
		var ids []uint64
		for rest := got[len("prefix"):]; len(rest) > 0; {
			h, err := record.ParseHeader(rest)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ids = append(ids, batchID(rest))
			rest = rest[h.TotalBytes():]
		}
		if !slicesEqual(ids, wantIDs) {
			t.Errorf("%s: got batches %v, want %v", name, ids, wantIDs)
		}
	}
	check("mid batch", 4, 1, math.MaxInt64, 1)
	check("one batch minimum", 0, 0, math.MaxInt64, 0)
	check("maxBytes", 0, 2*161+160, math.MaxInt64, 0, 1)
	check("segment boundary", 3, 1<<20, math.MaxInt64, 1, 2, 3, 4, 5)
	check("maxOffset", 0, 1<<20, 7, 0, 1)
	check("maxOffset inside the first batch", 3, 1<<20, 5)
	check("maxOffset at the offset", 9, 1<<20, 9)
}

func slicesEqual(a, b []uint64) bool {
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

// TestIndexLookupBoundaries checks that the sparse index finds the batch
// holding every offset, including offsets exactly at, just before and just
// after indexed batches and the first and last offset of every segment, by
// reading each offset with maxBytes 1 and checking the one batch returned.
func TestIndexLookupBoundaries(t *testing.T) {
	config := smallConfig()
	config.SegmentBytesMax = 4000
	config.IndexIntervalBytes = 150
	l := mustOpen(t, newDisk(1), config)
	var bases []int64
	for i := range 60 {
		base, _ := mustAppend(t, l, makeBatch(uint64(i), 1+i%4, 20+i*7%90, 1000), 0, epoch0)
		bases = append(bases, base)
	}
	entries := 0
	for _, s := range l.segments {
		entries += len(s.index.offsets)
		for _, e := range s.index.offsets {
			if e.position == 0 {
				t.Fatalf("index entry at position 0")
			}
		}
	}
	if entries < 10 {
		t.Fatalf("only %d index entries; the test needs many", entries)
	}
	for offset := int64(0); offset < l.LogEndOffset(); offset++ {
		got, err := l.Read(offset, 1, math.MaxInt64, nil)
		if err != nil {
			t.Fatalf("Read(%d): %v", offset, err)
		}
		h, err := record.Validate(got)
		if err != nil {
			t.Fatalf("Read(%d) returned more or less than one batch: %v", offset, err)
		}
		if h.BaseOffset > offset || h.LastOffset() < offset {
			t.Fatalf("Read(%d) returned batch [%d, %d]", offset, h.BaseOffset, h.LastOffset())
		}
		if bases[batchID(got)] != h.BaseOffset {
			t.Fatalf("Read(%d) returned batch %d at the wrong offset", offset, batchID(got))
		}
	}
}

// TestIndexLookupUnit checks segmentIndex.lookup and lookupTime directly at
// and around every entry, against a linear search.
func TestIndexLookupUnit(t *testing.T) {
	x := segmentIndex{
		offsets: []offsetEntry{{5, 100}, {9, 250}, {20, 400}},
		times:   []timeEntry{{10, 5}, {30, 20}},
	}
	for rel := uint32(0); rel < 25; rel++ {
		want := int64(0)
		for _, e := range x.offsets {
			if e.relativeOffset <= rel {
				want = int64(e.position)
			}
		}
		if got := x.lookup(rel); got != want {
			t.Errorf("lookup(%d) = %d, want %d", rel, got, want)
		}
	}
	for ts, want := range map[int64]uint32{0: 0, 10: 0, 11: 5, 30: 5, 31: 20, 99: 20} {
		if got := x.lookupTime(ts); got != want {
			t.Errorf("lookupTime(%d) = %d, want %d", ts, got, want)
		}
	}
}
