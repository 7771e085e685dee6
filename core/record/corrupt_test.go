package record

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// rawRecord encodes one record with chosen deltas; a helper for corruption
// cases.
func rawRecord(t *testing.T, r Record, timestampDelta int64, offsetDelta int32) []byte {
	t.Helper()
	body, err := recordBodyBytes(&r, timestampDelta, offsetDelta)
	if err != nil {
		t.Fatal(err)
	}
	return appendRecord(nil, &r, timestampDelta, offsetDelta, body)
}

// rawBody prefixes a hand-written record body with its length.
func rawBody(body ...byte) []byte {
	return append(appendVarint(nil, int64(len(body))), body...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestCorruptRecordsAreNamed feeds batches with a valid CRC but bad records
// to the decoder and checks that each gives an ErrCorrupt error whose text
// names the specific problem.
func TestCorruptRecordsAreNamed(t *testing.T) {
	v := func(s string) Record { return Record{Value: []byte(s), Key: []byte("k")} }
	r0 := rawRecord(t, v("a-long-enough-value"), 0, 0)
	r1 := rawRecord(t, v("b-long-enough-value"), 1, 1)
	cases := []struct {
		name             string
		count, lastDelta int32
		section          []byte
		want             string
	}{
		{"fewer records than count", 3, 2, cat(r0, r1), "the records end after 2"},
		{"more records than count", 1, 1, cat(r0, r1), "trailing garbage"},
		{"count beyond lastOffsetDelta", 2, 0, cat(r0, r1), "exceeds lastOffsetDelta"},
		{"count cannot fit", 9, 9, cat(r0, r1), "cannot fit"},
		{"offset delta repeats", 2, 1, cat(r0, rawRecord(t, v("x"), 1, 0)), "must exceed the previous"},
		{"offset delta beyond last", 2, 1, cat(r0, rawRecord(t, v("x"), 1, 2)), "not exceed lastOffsetDelta"},
		{"negative offset delta", 1, 0, rawRecord(t, v("x"), 0, -1), "must exceed the previous"},
		{"record length beyond section", 1, 0, cat(appendVarint(nil, 100), r0[1:]), "length 100"},
		{"negative record length", 1, 0, cat(appendVarint(nil, -3), r0[1:]), "length -3"},
		{"key beyond record", 1, 0, rawBody(0, 0, 0, 40, 'k', 1, 0), "key length 20 exceeds"},
		{"key length below -1", 1, 0, rawBody(0, 0, 0, 3, 1, 0, 0), "key length -2 is negative"},
		{"null header key", 1, 0, rawBody(0, 0, 0, 1, 1, 2, 1, 1), "null key"},
		{"header count too large", 1, 0, rawBody(0, 0, 0, 1, 1, 100, 0), "header count 50"},
		{"bytes after headers", 1, 0, rawBody(0, 0, 0, 1, 1, 0, 7, 7), "2 bytes left after the last header"},
		{"varint runs off the record", 1, 0, rawBody(0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), "timestampDelta ends"},
		{"offset delta beyond int32", 1, 0, rawBody(0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 1, 0), "does not fit in 32 bits"},
		{"varint too long", 1, 0, rawBody(0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0), "longer than 64 bits"},
		{"timestamp overflow", 1, 0, rawRecord(t, v("x"), math.MaxInt64, 0), "overflows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			batch := buildRaw(t, c.count, c.lastDelta, c.section)
			_, err := ValidateRecords(batch)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrCorrupt containing %q", err, c.want)
			}
		})
	}
}

// TestCorruptBatchesAreNamed checks batch-level failures: truncation, CRC
// mismatch, bad magic, base offset overflow, and undecompressable payloads of
// every codec.
func TestCorruptBatchesAreNamed(t *testing.T) {
	good, err := AppendBatch(nil, NewBatchSpec(CodecNone), sampleRecords(3, 10))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		batch []byte
		want  error
		text  string
	}{
		{"truncated", good[:len(good)-1], ErrTruncated, "only"},
		{"short prefix", good[:5], ErrTruncated, "length prefix"},
		{"crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorrupt, "crc mismatch"},
		{"magic", mutate(func(b []byte) []byte { b[offsetMagic] = 1; return reseal(b) }), ErrCorrupt, "magic"},
		{"base offset overflow", mutate(func(b []byte) []byte {
			SetBaseOffset(b, math.MaxInt64)
			return b
		}), ErrCorrupt, "overflows"},
	}
	for _, codec := range allCodecs[1:] {
		cases = append(cases, struct {
			name  string
			batch []byte
			want  error
			text  string
		}{"garbage " + codec.String(), mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[offsetAttributes:], uint16(codec))
			b = append(b[:HeaderBytes], "not compressed at all, just text"...)
			return reseal(b)
		}), ErrCorrupt, codec.String() + " records"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ValidateRecords(c.batch)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v containing %q", err, c.want, c.text)
			}
		})
	}
}
