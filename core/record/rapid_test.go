package record

import (
	"testing"

	"pgregory.net/rapid"
)

// nullableBytes draws null, empty or short non-empty byte strings, keeping
// null and empty apart.
func nullableBytes() *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "bytes")
		return append([]byte{}, b...)
	})
}

// timestamps draws millisecond timestamps: mostly near a common base, some
// anywhere in a wide range (including negative) to stress the deltas.
// The range is small enough that no delta overflows int64; overflow is a
// separate unit test.
func timestamps() *rapid.Generator[int64] {
	return rapid.OneOf(
		rapid.Int64Range(1_700_000_000_000-5000, 1_700_000_000_000+5000),
		rapid.Int64Range(-(1<<61), 1<<61),
		rapid.Just(int64(-1)),
	)
}

func records() *rapid.Generator[[]Record] {
	header := rapid.Custom(func(t *rapid.T) RecordHeader {
		return RecordHeader{Key: rapid.String().Draw(t, "headerKey"), Value: nullableBytes().Draw(t, "headerValue")}
	})
	record := rapid.Custom(func(t *rapid.T) Record {
		return Record{
			Timestamp: timestamps().Draw(t, "timestamp"),
			Key:       nullableBytes().Draw(t, "key"),
			Value:     nullableBytes().Draw(t, "value"),
			Headers:   rapid.SliceOfN(header, 0, 4).Draw(t, "headers"),
		}
	})
	return rapid.SliceOfN(record, 1, 40)
}

// TestPropertyRoundTrip draws random records (null and empty keys, values
// and header values, wide timestamps, headers) and a random spec and codec,
// builds a batch and checks that decoding gives back exactly the records,
// the spec's header fields, and the computed timestamps.
func TestPropertyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := records().Draw(t, "records")
		spec := NewBatchSpec(rapid.SampledFrom(allCodecs).Draw(t, "codec"))
		spec.BaseOffset = rapid.Int64Range(0, 1<<50).Draw(t, "baseOffset")
		if rapid.Bool().Draw(t, "idempotent") {
			spec.ProducerID = rapid.Int64Range(0, 1<<40).Draw(t, "producerID")
			spec.ProducerEpoch = int16(rapid.IntRange(0, 1<<15-1).Draw(t, "epoch"))
			spec.BaseSequence = int32(rapid.IntRange(0, 1<<31-1).Draw(t, "sequence"))
			spec.Transactional = rapid.Bool().Draw(t, "transactional")
		}
		batch, err := AppendBatch(nil, spec, recs)
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		h, got, err := DecodeRecords(batch)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%d records, want %d", len(got), len(recs))
		}
		for i := range recs {
			want := recs[i]
			want.Offset = spec.BaseOffset + int64(i)
			if err := equalRecord(&got[i], &want); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		if h.BaseOffset != spec.BaseOffset || h.ProducerID != spec.ProducerID || h.ProducerEpoch != spec.ProducerEpoch ||
			h.BaseSequence != spec.BaseSequence || h.Attributes.IsTransactional() != spec.Transactional ||
			h.Attributes.Compression() != spec.Codec || h.MaxTimestamp != maxTimestamp(recs) ||
			h.BaseTimestamp != recs[0].Timestamp {
			t.Fatalf("header %+v for spec %+v", h, spec)
		}
	})
}
