package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
)

// BatchSpec describes the header fields of a batch to build. The record
// count, last offset delta, timestamps, length and CRC are computed from the
// records. Start from NewBatchSpec: the zero value names producer 0, which is
// a real producer id.
type BatchSpec struct {
	// BaseOffset is the offset of the first record. Producers send 0; the
	// broker overwrites it (SetBaseOffset).
	BaseOffset int64
	// PartitionLeaderEpoch is set by the broker; producers send -1.
	PartitionLeaderEpoch int32
	// Codec compresses the records section.
	Codec Codec
	// Transactional marks the batch as part of a transaction; it requires a
	// producer id.
	Transactional bool
	// ProducerID, ProducerEpoch and BaseSequence identify an idempotent
	// producer's batch, or are NoProducerID, NoProducerEpoch and NoSequence.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
}

// NewBatchSpec returns the spec of a plain (non-idempotent) producer batch
// compressed with codec.
func NewBatchSpec(codec Codec) BatchSpec {
	return BatchSpec{
		PartitionLeaderEpoch: -1,
		Codec:                codec,
		ProducerID:           NoProducerID,
		ProducerEpoch:        NoProducerEpoch,
		BaseSequence:         NoSequence,
	}
}

// validate rejects specs that no reader would accept.
func (s *BatchSpec) validate() error {
	if s.Codec < CodecNone || s.Codec > CodecZstd {
		return fmt.Errorf("record: unknown compression codec %d", int8(s.Codec))
	}
	if s.BaseOffset < 0 {
		return fmt.Errorf("record: negative base offset %d", s.BaseOffset)
	}
	if s.ProducerID < NoProducerID {
		return fmt.Errorf("record: producer id %d is below %d", s.ProducerID, NoProducerID)
	}
	if s.Transactional && s.ProducerID == NoProducerID {
		return errors.New("record: a transactional batch needs a producer id")
	}
	if s.BaseSequence < NoSequence {
		return fmt.Errorf("record: base sequence %d is below %d", s.BaseSequence, NoSequence)
	}
	return nil
}

// Builder builds batches, keeping its scratch buffer and compressors between
// calls so that a producer that reuses one Builder and one destination buffer
// allocates nothing per batch in the steady state. A Builder is not safe for
// concurrent use.
type Builder struct {
	scratch     []byte
	compressors compressors
}

// builders lets the package-level AppendBatch reuse Builders.
var builders = sync.Pool{New: func() any { return new(Builder) }}

// AppendBatch appends a complete, valid batch holding records to dst; see
// Builder.AppendBatch. It borrows a pooled Builder.
func AppendBatch(dst []byte, spec BatchSpec, records []Record) ([]byte, error) {
	if spec.Codec == CodecNone {
		// The uncompressed path needs no scratch space or encoder.
		return appendBatch(dst, &spec, records, 0, nil)
	}
	b := builders.Get().(*Builder)
	defer builders.Put(b)
	return b.AppendBatch(dst, spec, records)
}

// AppendBatch appends a complete, valid batch holding records to dst and
// returns the extended slice. Records are numbered consecutively from
// spec.BaseOffset (their Offset fields are ignored); the base timestamp is the
// first record's timestamp and the max timestamp the largest, as Kafka's
// producer does. The batch uses the CreateTime timestamp type. With a codec,
// the records section is compressed. On error dst is returned unchanged
// (its length; bytes past it may have been written).
func (b *Builder) AppendBatch(dst []byte, spec BatchSpec, records []Record) ([]byte, error) {
	return appendBatch(dst, &spec, records, 0, b)
}

// appendBatch builds the batch. extraAttributes carries the control bit;
// b may be nil only for uncompressed batches.
func appendBatch(dst []byte, spec *BatchSpec, records []Record, extraAttributes Attributes, b *Builder) ([]byte, error) {
	if err := spec.validate(); err != nil {
		return dst, err
	}
	plan, err := planRecords(records)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	if spec.Codec == CodecNone {
		dst = slices.Grow(dst, HeaderBytes+plan.recordsBytes)
		dst = dst[:start+HeaderBytes]
		dst = appendRecords(dst, records, plan.baseTimestamp)
	} else {
		b.scratch = appendRecords(b.scratch[:0], records, plan.baseTimestamp)
		dst = slices.Grow(dst, HeaderBytes)
		dst = dst[:start+HeaderBytes]
		if dst, err = b.compressors.compress(dst, b.scratch, spec.Codec); err != nil {
			return dst[:start], err
		}
	}
	if size := len(dst) - start; size > BatchBytesMax {
		return dst[:start], fmt.Errorf("record: batch of %d bytes exceeds the %d byte limit", size, BatchBytesMax)
	}
	attributes := Attributes(spec.Codec) | extraAttributes
	if spec.Transactional {
		attributes |= AttrTransactional
	}
	putHeader(dst[start:], spec, attributes, &plan)
	return dst, nil
}

// recordsPlan is what a pass over the records learns before encoding.
type recordsPlan struct {
	count         int
	recordsBytes  int
	baseTimestamp int64
	maxTimestamp  int64
}

// planRecords checks the records and sizes the uncompressed records section.
func planRecords(records []Record) (recordsPlan, error) {
	var plan recordsPlan
	if len(records) == 0 {
		return plan, errors.New("record: a batch needs at least one record")
	}
	plan.count = len(records)
	plan.baseTimestamp = records[0].Timestamp
	plan.maxTimestamp = records[0].Timestamp
	for i := range records {
		r := &records[i]
		plan.maxTimestamp = max(plan.maxTimestamp, r.Timestamp)
		delta, ok := timestampDelta(r.Timestamp, plan.baseTimestamp)
		if !ok {
			return plan, fmt.Errorf("record: record %d: timestamp %d is too far from the base timestamp %d",
				i, r.Timestamp, plan.baseTimestamp)
		}
		body, err := recordBodyBytes(r, delta, int32(i))
		if err != nil {
			return plan, fmt.Errorf("%w (record %d)", err, i)
		}
		plan.recordsBytes += varintBytes(int64(body)) + body
		if plan.recordsBytes > DecompressedBytesMax {
			return plan, fmt.Errorf("record: records exceed the %d byte limit at record %d", DecompressedBytesMax, i)
		}
	}
	return plan, nil
}

// timestampDelta returns ts - base, or false if it overflows.
func timestampDelta(ts, base int64) (int64, bool) {
	delta := ts - base
	overflow := (base < 0 && ts > math.MaxInt64+base) || (base > 0 && ts < math.MinInt64+base)
	return delta, !overflow
}

// appendRecords appends the records, numbered from offset delta 0.
func appendRecords(dst []byte, records []Record, baseTimestamp int64) []byte {
	for i := range records {
		r := &records[i]
		delta := r.Timestamp - baseTimestamp // planRecords checked the overflow
		body, err := recordBodyBytes(r, delta, int32(i))
		if err != nil {
			panic(fmt.Sprintf("record: record %d passed planning but fails sizing: %v", i, err))
		}
		dst = appendRecord(dst, r, delta, int32(i), body)
	}
	return dst
}

// putHeader fills in the header of the batch that b holds exactly, then its
// CRC, which covers everything from the attributes on.
func putHeader(b []byte, spec *BatchSpec, attributes Attributes, plan *recordsPlan) {
	be := binary.BigEndian
	be.PutUint64(b[offsetBaseOffset:], uint64(spec.BaseOffset))
	be.PutUint32(b[offsetBatchLength:], uint32(len(b)-LengthPrefixBytes))
	be.PutUint32(b[offsetPartitionLeaderEpoch:], uint32(spec.PartitionLeaderEpoch))
	b[offsetMagic] = Magic
	be.PutUint16(b[offsetAttributes:], uint16(attributes))
	be.PutUint32(b[offsetLastOffsetDelta:], uint32(plan.count-1))
	be.PutUint64(b[offsetBaseTimestamp:], uint64(plan.baseTimestamp))
	be.PutUint64(b[offsetMaxTimestamp:], uint64(plan.maxTimestamp))
	be.PutUint64(b[offsetProducerID:], uint64(spec.ProducerID))
	be.PutUint16(b[offsetProducerEpoch:], uint16(spec.ProducerEpoch))
	be.PutUint32(b[offsetBaseSequence:], uint32(spec.BaseSequence))
	be.PutUint32(b[offsetRecordCount:], uint32(plan.count))
	be.PutUint32(b[offsetCRC:], ComputeCRC(b))
}
