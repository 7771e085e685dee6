package storage

import (
	"math"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/core/record"
)

// TestRollBySize checks that a segment is rolled when the next batch would
// push it past SegmentBytesMax, and never earlier, by appending equal
// batches and checking every segment's size and base offset.
func TestRollBySize(t *testing.T) {
	l := mustOpen(t, newDisk(1), smallConfig())
	for i := range 20 {
		mustAppend(t, l, makeBatch(uint64(i), 2, 100, 1000), 0, epoch0)
	}
	segments := l.Segments()
	for i, s := range segments {
		if s.SizeBytes > 1024 {
			t.Fatalf("segment %d is %d bytes, over the limit", i, s.SizeBytes)
		}
		if i < len(segments)-1 && s.SizeBytes != 6*161 {
			t.Fatalf("segment %d rolled early at %d bytes", i, s.SizeBytes)
		}
		if i > 0 && s.BaseOffset != segments[i-1].NextOffset {
			t.Fatalf("segment %d starts at %d, previous ends at %d", i, s.BaseOffset, segments[i-1].NextOffset)
		}
	}
	if len(segments) != 4 {
		t.Fatalf("%d segments, want 4", len(segments))
	}
}

// TestRollByAgeAndIndexFull checks the two other roll triggers: a segment
// older than SegmentAgeMsMax (by the now passed to Append) and a full
// offset index, by appending with a moving clock and with a tiny index.
func TestRollByAgeAndIndexFull(t *testing.T) {
	config := smallConfig()
	config.SegmentBytesMax = 1 << 20
	config.SegmentAgeMsMax = 1000
	l := mustOpen(t, newDisk(1), config)
	mustAppend(t, l, makeBatch(1, 1, 10, 0), 0, at(0))
	mustAppend(t, l, makeBatch(2, 1, 10, 0), 0, at(1000))
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("rolled at exactly the age limit: %d segments", n)
	}
	mustAppend(t, l, makeBatch(3, 1, 10, 0), 0, at(1001))
	if n := len(l.Segments()); n != 2 {
		t.Fatalf("did not roll an old segment: %d segments", n)
	}

	config = smallConfig()
	config.SegmentBytesMax = 1 << 20
	config.IndexIntervalBytes = 0
	config.IndexBytesMax = 3 * indexEntryBytes // also 2 time entries
	l = mustOpen(t, newDisk(2), config)
	for i := range 10 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 10, int64(i)), 0, epoch0)
	}
	for i, s := range l.segments {
		if len(s.index.offsets) > 3 || len(s.index.times) > 2 {
			t.Fatalf("segment %d index overfull: %d/%d entries", i, len(s.index.offsets), len(s.index.times))
		}
	}
	if n := len(l.Segments()); n < 3 {
		t.Fatalf("a full index did not roll: %d segments", n)
	}
}

// TestRetention checks time and size retention: expired or excess segments
// are deleted oldest first, the active segment never, the log start offset
// moves to the first kept segment and survives a reopen.
func TestRetention(t *testing.T) {
	config := smallConfig()
	config.RetentionMs = 10_000
	disk := newDisk(1)
	l := mustOpen(t, disk, config)
	// Segment k holds batches with timestamps 1000*k.
	for i := range 24 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, epoch0.UnixMilli()+int64(i/6)*1000), 0, epoch0)
	}
	if n := len(l.Segments()); n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	if n, err := l.DeleteOldSegments(at(0)); err != nil || n != 0 {
		t.Fatalf("deleted %d (%v) with nothing expired", n, err)
	}
	// At 11500 segments with max timestamp 0 and 1000 are expired.
	n, err := l.DeleteOldSegments(timeAt(11_500))
	if err != nil || n != 2 {
		t.Fatalf("time retention deleted %d (%v), want 2", n, err)
	}
	if l.LogStartOffset() != 12 {
		t.Fatalf("log start %d, want 12", l.LogStartOffset())
	}
	if _, err := l.Read(11, 100, math.MaxInt64, nil); !isErr(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	// Everything is expired far in the future, but the active segment stays.
	if n, _ := l.DeleteOldSegments(timeAt(1 << 40)); n != 1 || len(l.Segments()) != 1 {
		t.Fatalf("deleted %d, left %d segments; want the active one kept", n, len(l.Segments()))
	}
	l.Close()
	l = mustOpen(t, disk, config)
	if l.LogStartOffset() != 18 || l.LogEndOffset() != 24 {
		t.Fatalf("after reopen: start %d end %d, want 18 24", l.LogStartOffset(), l.LogEndOffset())
	}

	config.RetentionMs = -1
	config.RetentionBytes = 2000
	l = mustOpen(t, newDisk(2), config)
	for i := range 24 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 0), 0, epoch0)
	}
	// 3864 bytes in four segments of 966: deleting one leaves 2898 >= 2000,
	// deleting a second would leave 1932 < 2000.
	if n, err := l.DeleteOldSegments(epoch0); err != nil || n != 1 {
		t.Fatalf("size retention deleted %d (%v), want 1", n, err)
	}
	if l.Size() != 3*6*161 || l.LogStartOffset() != 6 {
		t.Fatalf("size after retention %d, start %d", l.Size(), l.LogStartOffset())
	}
}

// TestRetentionCountsOnlyBytesBelowTheLimit: size retention below a limit
// (a replicated partition's high watermark) counts only the bytes below
// it, so the uncommitted tail, which a leader change may take away, never
// lets it delete committed records that log.retention.bytes keeps (sim
// seed 1401836).
func TestRetentionCountsOnlyBytesBelowTheLimit(t *testing.T) {
	config := smallConfig()
	config.RetentionMs = -1
	config.RetentionBytes = 2000
	l := mustOpen(t, newDisk(1), config)
	for i := range 24 {
		mustAppend(t, l, makeBatch(uint64(i), 1, 100, 0), 0, epoch0)
	}
	// Four segments of 966 bytes. With the limit at 18 (the last segment
	// uncommitted) the committed log is 2898 bytes, and deleting the first
	// segment would leave 1932 < 2000.
	if n, err := l.DeleteOldSegmentsBelow(epoch0, 18); err != nil || n != 0 {
		t.Fatalf("retention below 18 deleted %d (%v), want 0", n, err)
	}
	// Once all is committed, 3864 bytes: one segment may go.
	if n, err := l.DeleteOldSegmentsBelow(epoch0, 24); err != nil || n != 1 {
		t.Fatalf("retention below 24 deleted %d (%v), want 1", n, err)
	}
}

func timeAt(ms int64) time.Time { return at(ms) }

// TestOffsetForTimestamp checks the time lookup against a brute-force
// search over the appended batches, for every target timestamp, with
// non-monotonic batch timestamps spread over several segments.
func TestOffsetForTimestamp(t *testing.T) {
	config := smallConfig()
	config.IndexIntervalBytes = 100
	l := mustOpen(t, newDisk(1), config)
	type batchInfo struct{ base, maxTs int64 }
	var batches []batchInfo
	for i := range 40 {
		ts := int64((i*37)%50) * 10
		base, _ := mustAppend(t, l, makeBatch(uint64(i), 2, 60, ts), 0, epoch0)
		batches = append(batches, batchInfo{base, ts})
	}
	for target := int64(0); target <= 500; target += 5 {
		offset, ts, ok, err := l.OffsetForTimestamp(target)
		if err != nil {
			t.Fatal(err)
		}
		wantOK := false
		var want batchInfo
		for _, b := range batches {
			if b.maxTs >= target {
				want, wantOK = b, true
				break
			}
		}
		if ok != wantOK || (ok && (offset != want.base || ts != want.maxTs)) {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", target, offset, ts, ok, want.base, want.maxTs, wantOK)
		}
	}
	if _, _, _, err := l.OffsetForTimestamp(-1); err == nil {
		t.Fatal("negative timestamp accepted")
	}
}

// storedRecord is one record of the model TestRecordForTimestamp keeps.
type storedRecord struct {
	offset, timestamp int64
	epoch             int32
}

// TestRecordForTimestamp checks ListOffsets' exact lookup (KIP-79: the
// first record whose timestamp is at or after the target, with that
// record's timestamp) against a brute-force search over every record
// appended: batches of every codec, timestamps out of order inside a batch
// and across batches, several segments and leader epochs, before and after
// retention moves the log start offset. OffsetForTimestamp, which answers
// the batch, gets the same targets wrong whenever the record is not the
// batch's first or its timestamp is not the batch's max.
func TestRecordForTimestamp(t *testing.T) {
	config := smallConfig()
	config.SegmentBytesMax = 1024
	config.RetentionBytes = 2048
	l := mustOpen(t, newDisk(1), config)
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	var model []storedRecord
	for i := range 60 {
		// Three records per batch whose timestamps go up, down and up.
		base := epoch0.UnixMilli() + int64((i*37)%50)*10
		recs := []record.Record{{Timestamp: base + 5}, {Timestamp: base}, {Timestamp: base + 9}}
		for j := range recs {
			recs[j].Value = []byte{byte(i), byte(j)}
		}
		batch, err := record.AppendBatch(nil, record.NewBatchSpec(codecs[i%len(codecs)]), recs)
		if err != nil {
			t.Fatal(err)
		}
		epoch := int32(i / 20)
		first, _ := mustAppend(t, l, batch, epoch, epoch0)
		for j, r := range recs {
			model = append(model, storedRecord{first + int64(j), r.Timestamp, epoch})
		}
	}
	check := func(when string) {
		t.Helper()
		for target := epoch0.UnixMilli() - 5; target <= epoch0.UnixMilli()+510; target++ {
			got, ok, err := l.RecordForTimestamp(target)
			if err != nil {
				t.Fatal(err)
			}
			var want storedRecord
			wantOK := false
			for _, r := range model {
				if r.offset >= l.LogStartOffset() && r.timestamp >= target {
					want, wantOK = r, true
					break
				}
			}
			if ok != wantOK || (ok && (got.Offset != want.offset || got.Timestamp != want.timestamp || got.LeaderEpoch != want.epoch)) {
				t.Fatalf("%s: RecordForTimestamp(%d) = %+v, %v; want %+v, %v", when, target, got, ok, want, wantOK)
			}
		}
	}
	check("full log")
	if n, err := l.DeleteOldSegments(epoch0); err != nil || n == 0 {
		t.Fatalf("retention deleted %d segments: %v", n, err)
	}
	check("after retention")
	if _, _, err := l.RecordForTimestamp(-1); err == nil {
		t.Fatal("negative timestamp accepted")
	}
}
