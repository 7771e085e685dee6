package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// allCodecs lists every codec, uncompressed first.
var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// reseal rewrites the batch length and CRC of b after a test modified it, so
// that the corruption under test is the only thing wrong.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offsetBatchLength:], uint32(len(b)-LengthPrefixBytes))
	binary.BigEndian.PutUint32(b[offsetCRC:], ComputeCRC(b))
	return b
}

// sampleRecords returns n records with varied keys, values, headers and
// timestamps, including null and empty keys and values.
func sampleRecords(n, valueBytes int) []Record {
	records := make([]Record, n)
	for i := range records {
		r := &records[i]
		r.Timestamp = 1_700_000_000_000 + int64(i*7) - int64(i%3)*20
		switch i % 4 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
		default:
			r.Key = []byte(fmt.Sprintf("key-%d", i))
		}
		r.Value = bytes.Repeat([]byte{byte('a' + i%26)}, valueBytes)
		if i%5 == 4 {
			r.Value = nil
		}
		if i%3 == 0 {
			r.Headers = []RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}
		}
	}
	return records
}

// equalRecord reports whether two records are equal, telling null from empty.
func equalRecord(a, b *Record) error {
	if a.Offset != b.Offset || a.Timestamp != b.Timestamp {
		return fmt.Errorf("offset/timestamp %d/%d, want %d/%d", a.Offset, a.Timestamp, b.Offset, b.Timestamp)
	}
	if err := equalNullable("key", a.Key, b.Key); err != nil {
		return err
	}
	if err := equalNullable("value", a.Value, b.Value); err != nil {
		return err
	}
	if len(a.Headers) != len(b.Headers) {
		return fmt.Errorf("%d headers, want %d", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key {
			return fmt.Errorf("header %d key %q, want %q", i, a.Headers[i].Key, b.Headers[i].Key)
		}
		if err := equalNullable("header value", a.Headers[i].Value, b.Headers[i].Value); err != nil {
			return fmt.Errorf("header %d: %w", i, err)
		}
	}
	return nil
}

func equalNullable(what string, got, want []byte) error {
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		return fmt.Errorf("%s %q (nil=%v), want %q (nil=%v)", what, got, got == nil, want, want == nil)
	}
	return nil
}

// expectRecords decodes batch and checks it holds want, numbered from base.
func expectRecords(t testing.TB, batch []byte, base int64, want []Record) Header {
	t.Helper()
	h, got, err := DecodeRecords(batch)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d records, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.Offset = base + int64(i)
		if err := equalRecord(&got[i], &w); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return h
}
