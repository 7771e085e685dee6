package record

import (
	"fmt"
	"math"
)

// Reader decodes the records of batches. It keeps its decompression buffer,
// decoders and header scratch space between calls, so decoding allocates
// nothing per record (header keys excepted: each is copied into a string).
// The zero value is ready to use. A Reader is not safe for concurrent use.
type Reader struct {
	records       []byte
	headers       []RecordHeader
	decompressors decompressors
	// record is handed to callbacks; keeping it here rather than on the
	// stack stops it from escaping to the heap on every call.
	record Record
}

// Records validates batch (exactly one batch: header, length and CRC, as
// Validate does), decompresses its records and calls fn for each record in
// order, with absolute offsets and timestamps. The *Record and everything it
// points to alias batch or the Reader's buffers and are valid only until fn
// returns; use Record.Clone to keep one.
//
// Records checks everything a reader can: the record count matches the
// records present, offset deltas strictly increase and stay within the
// header's lastOffsetDelta, every length stays inside its record, and no
// bytes trail the last record. A failure is an error wrapping ErrCorrupt (or
// ErrTruncated, for a batch cut short) that says what is wrong; fn may have
// seen the records before the bad one. An error from fn stops the walk and is
// returned unchanged. fn may be nil, which only validates.
func (r *Reader) Records(batch []byte, fn func(*Record) error) (Header, error) {
	h, err := Validate(batch)
	if err != nil {
		return h, err
	}
	if err := checkRecordsHeader(&h); err != nil {
		return h, err
	}
	section := batch[HeaderBytes:]
	if codec := h.Attributes.Compression(); codec != CodecNone {
		r.records, err = r.decompressors.decompress(r.records[:0], section, codec)
		if err != nil {
			return h, err
		}
		section = r.records
	}
	return h, r.walk(section, &h, fn)
}

// checkRecordsHeader checks the header fields that bound the records.
func checkRecordsHeader(h *Header) error {
	if int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		return fmt.Errorf("%w: recordCount %d exceeds lastOffsetDelta %d + 1", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	if h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta) {
		return fmt.Errorf("%w: baseOffset %d + lastOffsetDelta %d overflows", ErrCorrupt, h.BaseOffset, h.LastOffsetDelta)
	}
	return nil
}

// walk decodes the uncompressed records section and hands each record to fn.
func (r *Reader) walk(section []byte, h *Header, fn func(*Record) error) error {
	if int(h.RecordCount) > len(section)/recordBytesMin {
		return fmt.Errorf("%w: recordCount %d cannot fit in %d bytes of records", ErrCorrupt, h.RecordCount, len(section))
	}
	rest := section
	previousDelta := int32(-1)
	rec := &r.record
	*rec = Record{}
	for i := 0; i < int(h.RecordCount); i++ {
		if len(rest) == 0 {
			return fmt.Errorf("%w: recordCount is %d, but the records end after %d", ErrCorrupt, h.RecordCount, i)
		}
		length, n := readVarint(rest)
		if n <= 0 {
			return fmt.Errorf("%w: record %d: bad length varint", ErrCorrupt, i)
		}
		rest = rest[n:]
		if length < 0 || length > int64(len(rest)) {
			return fmt.Errorf("%w: record %d: length %d, but %d bytes left", ErrCorrupt, i, length, len(rest))
		}
		body := rest[:length:length]
		rest = rest[length:]
		timestampDelta, offsetDelta, headers, err := decodeRecordBody(body, i, rec, r.headers)
		r.headers = headers
		if err != nil {
			return err
		}
		if offsetDelta <= previousDelta || offsetDelta > h.LastOffsetDelta {
			return fmt.Errorf("%w: record %d: offsetDelta %d must exceed the previous %d and not exceed lastOffsetDelta %d",
				ErrCorrupt, i, offsetDelta, previousDelta, h.LastOffsetDelta)
		}
		previousDelta = offsetDelta
		rec.Offset = h.BaseOffset + int64(offsetDelta)
		if rec.Timestamp, err = recordTimestamp(h, timestampDelta, i); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes of trailing garbage after record %d", ErrCorrupt, len(rest), h.RecordCount)
	}
	return nil
}

// recordTimestamp returns a record's absolute timestamp: the batch's max
// timestamp under log-append time, else base timestamp plus delta.
func recordTimestamp(h *Header, delta int64, index int) (int64, error) {
	if h.Attributes.LogAppendTime() {
		return h.MaxTimestamp, nil
	}
	ts, ok := addTimestamp(h.BaseTimestamp, delta)
	if !ok {
		return 0, fmt.Errorf("%w: record %d: baseTimestamp %d + timestampDelta %d overflows",
			ErrCorrupt, index, h.BaseTimestamp, delta)
	}
	return ts, nil
}

// addTimestamp returns base + delta, or false if it overflows.
func addTimestamp(base, delta int64) (int64, bool) {
	sum := base + delta
	overflow := (delta > 0 && sum < base) || (delta < 0 && sum > base)
	return sum, !overflow
}

// Records decodes batch with a fresh Reader; see Reader.Records. Prefer a
// long-lived Reader on hot paths.
func Records(batch []byte, fn func(*Record) error) (Header, error) {
	var r Reader
	return r.Records(batch, fn)
}

// ValidateRecords checks batch as Reader.Records does, decompressing and
// decoding every record, without handing records to anyone.
func ValidateRecords(batch []byte) (Header, error) {
	return Records(batch, nil)
}

// DecodeRecords returns copies of all records of batch. It allocates; it is
// meant for tests, tools and consumers that keep records.
func DecodeRecords(batch []byte) (Header, []Record, error) {
	var out []Record
	h, err := Records(batch, func(r *Record) error {
		out = append(out, r.Clone())
		return nil
	})
	if err != nil {
		return h, nil, err
	}
	return h, out, nil
}
