package record

import (
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgRecords encodes records with franz-go's kmsg.Record, numbering them
// from offset delta 0 relative to base timestamp.
func kmsgRecords(records []Record, base int64) []byte {
	var out []byte
	for i, r := range records {
		kr := kmsg.Record{
			TimestampDelta64: r.Timestamp - base,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil) // Length 0 encodes as one byte.
		kr.Length = int32(len(body) - 1)
		out = kr.AppendTo(out)
	}
	return out
}

// TestKmsgBatchDecodesWithOurs builds an uncompressed batch with franz-go's
// kmsg.RecordBatch and kmsg.Record, and checks that our reader validates it
// and returns the same records, null and empty values included.
func TestKmsgBatchDecodesWithOurs(t *testing.T) {
	records := sampleRecords(40, 64)
	base := records[0].Timestamp
	kb := kmsg.RecordBatch{
		FirstOffset:          300,
		PartitionLeaderEpoch: 5,
		Magic:                2,
		LastOffsetDelta:      int32(len(records) - 1),
		FirstTimestamp:       base,
		MaxTimestamp:         maxTimestamp(records),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(records)),
		Records:              kmsgRecords(records, base),
	}
	raw := kb.AppendTo(nil)
	kb.Length = int32(len(raw) - LengthPrefixBytes)
	raw = kb.AppendTo(nil)
	kb.CRC = int32(crc32.Checksum(raw[offsetAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	raw = kb.AppendTo(nil)
	h := expectRecords(t, raw, 300, records)
	if h.PartitionLeaderEpoch != 5 {
		t.Fatalf("header %+v", h)
	}
}

// TestOurBatchDecodesWithKmsg builds an uncompressed batch with ours and
// parses it with kmsg.RecordBatch.ReadFrom and each record with
// kmsg.Record.ReadFrom, comparing every field.
func TestOurBatchDecodesWithKmsg(t *testing.T) {
	records := sampleRecords(40, 64)
	spec := NewBatchSpec(CodecNone)
	spec.BaseOffset = 77
	spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 1, 2, 3
	batch, err := AppendBatch(nil, spec, records)
	if err != nil {
		t.Fatal(err)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(batch); err != nil {
		t.Fatal(err)
	}
	if kb.FirstOffset != 77 || kb.NumRecords != 40 || kb.LastOffsetDelta != 39 || kb.ProducerID != 1 ||
		kb.FirstSequence != 3 || uint32(kb.CRC) != ComputeCRC(batch) || int(kb.Length) != len(batch)-LengthPrefixBytes {
		t.Fatalf("kmsg header %+v", kb)
	}
	rest := kb.Records
	for i, want := range records {
		length, n := kbin.Varint(rest)
		if n == 0 {
			t.Fatalf("record %d: bad length", i)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(rest[:n+int(length)]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rest = rest[n+int(length):]
		got := Record{Offset: 77 + int64(kr.OffsetDelta), Timestamp: kb.FirstTimestamp + kr.TimestampDelta64,
			Key: kr.Key, Value: kr.Value}
		for _, h := range kr.Headers {
			got.Headers = append(got.Headers, RecordHeader{Key: h.Key, Value: h.Value})
		}
		want.Offset = 77 + int64(i)
		if err := equalRecord(&got, &want); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the records", len(rest))
	}
}
