package record

import (
	"fmt"
	"math"
)

// Record is one record of a batch. Key and Value distinguish null (nil) from
// empty (a non-nil slice of length zero), as Kafka does.
//
// Records handed out by Reader.Records alias the batch or the Reader's
// buffers and are valid only during the callback; Clone makes a copy that
// owns its memory.
type Record struct {
	// Offset is the record's absolute offset: the batch's base offset plus
	// the record's offset delta. AppendBatch ignores it and numbers the
	// records of a batch consecutively from the base offset.
	Offset int64
	// Timestamp is in milliseconds since the Unix epoch. When reading a
	// batch with log-append time it is the batch's max timestamp.
	Timestamp int64
	// Key is the record's key; nil means null.
	Key []byte
	// Value is the record's value; nil means null (a tombstone).
	Value []byte
	// Headers are the record's headers, in order.
	Headers []RecordHeader
}

// RecordHeader is one header of a record. Its key is never null; its value
// may be (nil).
type RecordHeader struct {
	Key   string
	Value []byte
}

// Clone returns a deep copy of r that shares no memory with it. Null and
// empty keys and values stay distinct.
func (r *Record) Clone() Record {
	c := *r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	c.Headers = nil
	if r.Headers != nil {
		c.Headers = make([]RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = RecordHeader{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

// cloneBytes copies b, keeping nil apart from empty.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// recordBytesMin is the smallest encoded record: a one-byte length and one
// byte each for attributes, timestamp delta, offset delta, key length, value
// length and header count. It bounds how many records a byte range can hold.
const recordBytesMin = 7

// nullLength is the length Kafka writes for a null key, value or header
// value.
const nullLength = -1

// recordBodyBytes returns the encoded size of a record without its length
// prefix, or an error if a field is too long for Kafka's int32 lengths.
func recordBodyBytes(r *Record, timestampDelta int64, offsetDelta int32) (int, error) {
	size := 1 + varintBytes(timestampDelta) + varintBytes(int64(offsetDelta))
	size += nullableBytesSize(r.Key) + nullableBytesSize(r.Value)
	size += varintBytes(int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		size += varintBytes(int64(len(h.Key))) + len(h.Key) + nullableBytesSize(h.Value)
	}
	if size > DecompressedBytesMax {
		return 0, fmt.Errorf("record: a record of %d bytes exceeds the %d byte limit", size, DecompressedBytesMax)
	}
	return size, nil
}

// nullableBytesSize returns the encoded size of a nullable byte string.
func nullableBytesSize(b []byte) int {
	if b == nil {
		return varintBytes(nullLength)
	}
	return varintBytes(int64(len(b))) + len(b)
}

// appendRecord appends r, length prefix included. bodyBytes must be what
// recordBodyBytes returned for the same arguments.
func appendRecord(dst []byte, r *Record, timestampDelta int64, offsetDelta int32, bodyBytes int) []byte {
	start := len(dst)
	dst = appendVarint(dst, int64(bodyBytes))
	bodyStart := len(dst)
	dst = append(dst, 0) // Record attributes are unused and always zero.
	dst = appendVarint(dst, timestampDelta)
	dst = appendVarint(dst, int64(offsetDelta))
	dst = appendNullableBytes(dst, r.Key)
	dst = appendNullableBytes(dst, r.Value)
	dst = appendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		dst = appendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullableBytes(dst, h.Value)
	}
	if len(dst)-bodyStart != bodyBytes {
		panic(fmt.Sprintf("record: encoded %d body bytes, computed %d (record starts at %d)",
			len(dst)-bodyStart, bodyBytes, start))
	}
	return dst
}

// appendNullableBytes appends a varint length (-1 for nil) and the bytes.
func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return appendVarint(dst, nullLength)
	}
	dst = appendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// cursor decodes the fields of one record body, naming the record and field
// in every error.
type cursor struct {
	b     []byte
	index int
}

func (c *cursor) corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: record %d: %s", ErrCorrupt, c.index, fmt.Sprintf(format, args...))
}

// varint64 reads a varlong field.
func (c *cursor) varint64(field string) (int64, error) {
	v, n := readVarint(c.b)
	if n == 0 {
		return 0, c.corrupt("%s ends after %d bytes, inside its varint", field, len(c.b))
	}
	if n < 0 {
		return 0, c.corrupt("%s varint is longer than 64 bits", field)
	}
	c.b = c.b[n:]
	return v, nil
}

// varint32 reads a varint field, which Kafka bounds to int32.
func (c *cursor) varint32(field string) (int32, error) {
	v, err := c.varint64(field)
	if err != nil {
		return 0, err
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, c.corrupt("%s %d does not fit in 32 bits", field, v)
	}
	return int32(v), nil
}

// nullableBytes reads a length and that many bytes; length -1 gives nil.
// An empty string gives a non-nil empty slice (c.b is never nil here).
func (c *cursor) nullableBytes(field string) ([]byte, error) {
	n, err := c.varint32(field)
	if err != nil {
		return nil, err
	}
	if n == nullLength {
		return nil, nil
	}
	if n < 0 {
		return nil, c.corrupt("%s length %d is negative", field, n)
	}
	if int(n) > len(c.b) {
		return nil, c.corrupt("%s length %d exceeds the %d bytes left in the record", field, n, len(c.b))
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v, nil
}

// decodeRecordBody decodes the body of a record (after its length prefix)
// into r, reusing headers for r.Headers. It returns the record's timestamp
// and offset deltas and the header slice for reuse. body must be non-nil.
func decodeRecordBody(body []byte, index int, r *Record, headers []RecordHeader) (int64, int32, []RecordHeader, error) {
	c := cursor{b: body, index: index}
	if len(c.b) == 0 {
		return 0, 0, headers, c.corrupt("empty record has no attributes byte")
	}
	c.b = c.b[1:] // Record attributes are unused; Kafka ignores them too.
	timestampDelta, err := c.varint64("timestampDelta")
	if err != nil {
		return 0, 0, headers, err
	}
	offsetDelta, err := c.varint32("offsetDelta")
	if err != nil {
		return 0, 0, headers, err
	}
	if r.Key, err = c.nullableBytes("key"); err != nil {
		return 0, 0, headers, err
	}
	if r.Value, err = c.nullableBytes("value"); err != nil {
		return 0, 0, headers, err
	}
	headers, err = c.headers(headers[:0])
	if err != nil {
		return 0, 0, headers, err
	}
	r.Headers = nil
	if len(headers) > 0 {
		r.Headers = headers
	}
	if len(c.b) != 0 {
		return 0, 0, headers, c.corrupt("%d bytes left after the last header", len(c.b))
	}
	return timestampDelta, offsetDelta, headers, nil
}

// headers reads the header count and the headers, appending them to dst.
func (c *cursor) headers(dst []RecordHeader) ([]RecordHeader, error) {
	count, err := c.varint32("header count")
	if err != nil {
		return dst, err
	}
	// A header takes at least two bytes (two lengths), which bounds the
	// count before it is trusted.
	if count < 0 || int(count) > len(c.b)/2 {
		return dst, c.corrupt("header count %d does not fit in the %d bytes left", count, len(c.b))
	}
	for i := 0; i < int(count); i++ {
		key, err := c.nullableBytes("header key")
		if err != nil {
			return dst, err
		}
		if key == nil {
			return dst, c.corrupt("header %d has a null key", i)
		}
		value, err := c.nullableBytes("header value")
		if err != nil {
			return dst, err
		}
		dst = append(dst, RecordHeader{Key: string(key), Value: value})
	}
	return dst, nil
}
