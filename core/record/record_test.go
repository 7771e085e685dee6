package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestVarintMatchesBinary checks our zigzag varint against encoding/binary's
// (the same encoding Kafka uses) at boundary values, both ways.
func TestVarintMatchesBinary(t *testing.T) {
	values := []int64{0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, math.MaxInt32, math.MinInt32,
		math.MaxInt64, math.MinInt64, 1 << 56, -(1 << 56)}
	for _, v := range values {
		got := appendVarint(nil, v)
		want := binary.AppendVarint(nil, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendVarint(%d) = %x, want %x", v, got, want)
		}
		if varintBytes(v) != len(want) {
			t.Fatalf("varintBytes(%d) = %d, want %d", v, varintBytes(v), len(want))
		}
		back, n := readVarint(append(got, 0xff))
		if back != v || n != len(got) {
			t.Fatalf("readVarint(%x) = %d, %d; want %d, %d", got, back, n, v, len(got))
		}
	}
	if _, n := readVarint([]byte{0x80, 0x80}); n != 0 {
		t.Fatalf("unterminated varint: n = %d, want 0", n)
	}
	long := bytes.Repeat([]byte{0xff}, 10)
	if _, n := readVarint(append(long, 0)); n >= 0 {
		t.Fatalf("11-byte varint: n = %d, want < 0", n)
	}
}

// TestRoundTripEachCodec builds a batch of varied records with each codec and
// checks that decoding returns the same records, offsets, timestamps and
// header fields, and that the header reports the right codec.
func TestRoundTripEachCodec(t *testing.T) {
	records := sampleRecords(50, 300)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			spec := NewBatchSpec(codec)
			spec.BaseOffset = 1000
			spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 7, 3, 42
			prefix := []byte("prefix")
			batch, err := AppendBatch(append([]byte(nil), prefix...), spec, records)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(batch[:len(prefix)], prefix) {
				t.Fatal("AppendBatch changed the bytes before the batch")
			}
			batch = batch[len(prefix):]
			h := expectRecords(t, batch, 1000, records)
			if h.Attributes.Compression() != codec || h.RecordCount != 50 || h.LastOffsetDelta != 49 {
				t.Fatalf("header %+v", h)
			}
			if h.ProducerID != 7 || h.ProducerEpoch != 3 || h.BaseSequence != 42 || h.PartitionLeaderEpoch != -1 {
				t.Fatalf("producer fields %+v", h)
			}
			if h.BaseTimestamp != records[0].Timestamp || h.MaxTimestamp != maxTimestamp(records) {
				t.Fatalf("timestamps base %d max %d", h.BaseTimestamp, h.MaxTimestamp)
			}
			if codec != CodecNone && len(batch) > HeaderBytes+50*300/2 {
				t.Fatalf("compressed batch of repetitive records is %d bytes", len(batch))
			}
		})
	}
}

func maxTimestamp(records []Record) int64 {
	m := records[0].Timestamp
	for _, r := range records {
		m = max(m, r.Timestamp)
	}
	return m
}

// TestLogAppendTime checks that after the broker stamps log-append time,
// every record reads back with the batch's max timestamp.
func TestLogAppendTime(t *testing.T) {
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), sampleRecords(3, 10))
	if err != nil {
		t.Fatal(err)
	}
	SetMaxTimestampLogAppend(batch, 99)
	_, got, err := DecodeRecords(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Timestamp != 99 {
			t.Fatalf("record %d timestamp %d, want 99", i, r.Timestamp)
		}
	}
}

// TestBrokerStampsKeepBatchValid checks that setting the base offset and
// leader epoch in place keeps the CRC valid and shifts record offsets.
func TestBrokerStampsKeepBatchValid(t *testing.T) {
	records := sampleRecords(4, 10)
	batch, err := AppendBatch(nil, NewBatchSpec(CodecLZ4), records)
	if err != nil {
		t.Fatal(err)
	}
	SetBaseOffset(batch, 500)
	SetPartitionLeaderEpoch(batch, 9)
	h := expectRecords(t, batch, 500, records)
	if h.PartitionLeaderEpoch != 9 || h.NextOffset() != 504 {
		t.Fatalf("header %+v", h)
	}
}

// TestBuildRejectsBadInput checks that invalid specs and records give errors,
// and leave dst's length unchanged.
func TestBuildRejectsBadInput(t *testing.T) {
	one := []Record{{Value: []byte("x")}}
	cases := []struct {
		name    string
		spec    func(*BatchSpec)
		records []Record
		want    string
	}{
		{"no records", func(*BatchSpec) {}, nil, "at least one record"},
		{"bad codec", func(s *BatchSpec) { s.Codec = 5 }, one, "unknown compression codec"},
		{"negative base offset", func(s *BatchSpec) { s.BaseOffset = -1 }, one, "negative base offset"},
		{"transaction without producer", func(s *BatchSpec) { s.Transactional = true }, one, "needs a producer id"},
		{"bad producer id", func(s *BatchSpec) { s.ProducerID = -2 }, one, "producer id"},
		{"bad sequence", func(s *BatchSpec) { s.BaseSequence = -2 }, one, "base sequence"},
		{"timestamp overflow", func(*BatchSpec) {},
			[]Record{{Timestamp: math.MinInt64}, {Timestamp: math.MaxInt64}}, "too far"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := NewBatchSpec(CodecNone)
			c.spec(&spec)
			dst := []byte("keep")
			out, err := AppendBatch(dst, spec, c.records)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
		})
	}
}

// TestBuildRejectsOversizedRecord checks the size limit: a value larger than
// DecompressedBytesMax is refused with an error, not built.
func TestBuildRejectsOversizedRecord(t *testing.T) {
	big := make([]byte, DecompressedBytesMax)
	_, err := AppendBatch(nil, NewBatchSpec(CodecNone), []Record{{Value: big}})
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

// TestReaderReuse decodes several batches of different codecs with one
// Reader and checks each result, so that buffer reuse cannot leak data from
// one batch into the next.
func TestReaderReuse(t *testing.T) {
	var r Reader
	for round := 0; round < 2; round++ {
		for i, codec := range allCodecs {
			records := sampleRecords(5+i*10, 50+i*100)
			batch, err := AppendBatch(nil, NewBatchSpec(codec), records)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			_, err = r.Records(batch, func(got *Record) error {
				want := records[n]
				want.Offset = int64(n)
				if err := equalRecord(got, &want); err != nil {
					t.Fatalf("%v record %d: %v", codec, n, err)
				}
				n++
				return nil
			})
			if err != nil || n != len(records) {
				t.Fatalf("%v: %d records, err %v", codec, n, err)
			}
		}
	}
}

// TestCallbackErrorIsReturned checks that an error from the callback stops
// the walk and comes back unchanged (not wrapped as corruption).
func TestCallbackErrorIsReturned(t *testing.T) {
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), sampleRecords(5, 5))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	_, err = Records(batch, func(*Record) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("err %v after %d calls, want stop after 1", err, calls)
	}
}

// TestEmptyBatchDecodes checks that a batch with zero records (as log
// compaction can leave) decodes to nothing, with its lastOffsetDelta kept.
func TestEmptyBatchDecodes(t *testing.T) {
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), []Record{{Value: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	batch = batch[:HeaderBytes]
	binary.BigEndian.PutUint32(batch[offsetRecordCount:], 0)
	binary.BigEndian.PutUint32(batch[offsetLastOffsetDelta:], 5)
	h, got, err := DecodeRecords(reseal(batch))
	if err != nil || len(got) != 0 || h.NextOffset() != 6 {
		t.Fatalf("got %d records, next offset %d, err %v", len(got), h.NextOffset(), err)
	}
}

// TestCompactedGapsDecode checks that offset deltas with gaps (left by
// compaction) decode to the right absolute offsets.
func TestCompactedGapsDecode(t *testing.T) {
	var section []byte
	for i, delta := range []int32{0, 3, 9} {
		r := Record{Value: []byte{byte(i)}}
		body, err := recordBodyBytes(&r, int64(i), delta)
		if err != nil {
			t.Fatal(err)
		}
		section = appendRecord(section, &r, int64(i), delta, body)
	}
	batch := buildRaw(t, 3, 9, section)
	_, got, err := DecodeRecords(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{100, 103, 109} {
		if got[i].Offset != want || got[i].Timestamp != 1000+int64(i) {
			t.Fatalf("record %d at %d/%d, want offset %d", i, got[i].Offset, got[i].Timestamp, want)
		}
	}
}

// buildRaw wraps an uncompressed records section in a valid header with the
// given counts: base offset 100, base timestamp 1000.
func buildRaw(t *testing.T, count, lastOffsetDelta int32, section []byte) []byte {
	t.Helper()
	batch, err := AppendBatch(nil, NewBatchSpec(CodecNone), []Record{{Timestamp: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	batch = append(batch[:HeaderBytes], section...)
	SetBaseOffset(batch, 100)
	binary.BigEndian.PutUint32(batch[offsetRecordCount:], uint32(count))
	binary.BigEndian.PutUint32(batch[offsetLastOffsetDelta:], uint32(lastOffsetDelta))
	return reseal(batch)
}
