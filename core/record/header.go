package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the v2 batch header fields.
const (
	offsetBaseOffset           = 0
	offsetBatchLength          = 8
	offsetPartitionLeaderEpoch = 12
	offsetMagic                = 16
	offsetCRC                  = 17
	offsetAttributes           = 21
	offsetLastOffsetDelta      = 23
	offsetBaseTimestamp        = 27
	offsetMaxTimestamp         = 35
	offsetProducerID           = 43
	offsetProducerEpoch        = 51
	offsetBaseSequence         = 53
	offsetRecordCount          = 57
)

const (
	// HeaderBytes is the size of a v2 batch header; the records follow it.
	HeaderBytes = 61
	// LengthPrefixBytes is how many leading bytes a reader needs to learn a
	// batch's total size: baseOffset and batchLength.
	LengthPrefixBytes = 12
	// Magic is the only batch format version this package accepts.
	Magic = 2
	// BatchBytesMax bounds the size of one batch. Larger length fields are
	// treated as corruption rather than trusted for an allocation.
	BatchBytesMax = 64 << 20
)

// Attribute bits of a v2 batch.
const (
	AttrCompressionMask    Attributes = 0x07
	AttrTimestampLogAppend Attributes = 0x08
	AttrTransactional      Attributes = 0x10
	AttrControl            Attributes = 0x20
	AttrDeleteHorizon      Attributes = 0x40
)

// NoProducerID, NoProducerEpoch and NoSequence mark a batch from a producer
// that is not idempotent.
const (
	NoProducerID    = -1
	NoProducerEpoch = -1
	NoSequence      = -1
)

// Attributes is the attributes field of a batch header.
type Attributes int16

// Compression returns the codec the records are compressed with.
func (a Attributes) Compression() Codec { return Codec(a & AttrCompressionMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (a Attributes) IsTransactional() bool { return a&AttrTransactional != 0 }

// IsControl reports whether the batch is a control batch (a transaction
// commit or abort marker).
func (a Attributes) IsControl() bool { return a&AttrControl != 0 }

// LogAppendTime reports whether the timestamps are the broker's append time.
func (a Attributes) LogAppendTime() bool { return a&AttrTimestampLogAppend != 0 }

// Codec identifies a compression codec, as stored in a batch's attributes.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka name.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Errors returned for invalid batches, wrapped with details. ErrTruncated
// means the bytes end before the batch does (the tail of a log after a torn
// write, or a short read); ErrCorrupt means the bytes are present but wrong.
var (
	ErrTruncated = errors.New("record: truncated batch")
	ErrCorrupt   = errors.New("record: corrupt batch")
)

// Header is the decoded header of a v2 batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           Attributes
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// TotalBytes returns the size of the whole batch, header included.
func (h *Header) TotalBytes() int { return LengthPrefixBytes + int(h.BatchLength) }

// LastOffset returns the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset returns the offset that follows the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// LastSequence returns the sequence number of the batch's last record, with
// Kafka's wrap-around at math.MaxInt32.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence == NoSequence {
		return NoSequence
	}
	last := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if last > 1<<31-1 {
		last -= 1 << 31
	}
	return int32(last)
}

// BatchSize reads the total size of the batch that starts at b[0] from its
// length prefix. b must hold at least LengthPrefixBytes bytes.
func BatchSize(b []byte) (int, error) {
	if len(b) < LengthPrefixBytes {
		return 0, fmt.Errorf("%w: %d bytes, need %d for the length prefix", ErrTruncated, len(b), LengthPrefixBytes)
	}
	length := int32(binary.BigEndian.Uint32(b[offsetBatchLength:]))
	if length < HeaderBytes-LengthPrefixBytes {
		return 0, fmt.Errorf("%w: batchLength %d is smaller than a header", ErrCorrupt, length)
	}
	if int64(length)+LengthPrefixBytes > BatchBytesMax {
		return 0, fmt.Errorf("%w: batchLength %d exceeds the %d byte limit", ErrCorrupt, length, BatchBytesMax)
	}
	return LengthPrefixBytes + int(length), nil
}

// ParseHeader decodes the header of the batch at the start of b without
// checking the CRC. It checks that the header is plausible: the length, magic
// and offset delta.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	size, err := BatchSize(b)
	if err != nil {
		return h, err
	}
	if len(b) < HeaderBytes {
		return h, fmt.Errorf("%w: %d bytes, need %d for the header", ErrTruncated, len(b), HeaderBytes)
	}
	be := binary.BigEndian
	h.BaseOffset = int64(be.Uint64(b[offsetBaseOffset:]))
	h.BatchLength = int32(size - LengthPrefixBytes)
	h.PartitionLeaderEpoch = int32(be.Uint32(b[offsetPartitionLeaderEpoch:]))
	h.Magic = int8(b[offsetMagic])
	h.CRC = be.Uint32(b[offsetCRC:])
	h.Attributes = Attributes(be.Uint16(b[offsetAttributes:]))
	h.LastOffsetDelta = int32(be.Uint32(b[offsetLastOffsetDelta:]))
	h.BaseTimestamp = int64(be.Uint64(b[offsetBaseTimestamp:]))
	h.MaxTimestamp = int64(be.Uint64(b[offsetMaxTimestamp:]))
	h.ProducerID = int64(be.Uint64(b[offsetProducerID:]))
	h.ProducerEpoch = int16(be.Uint16(b[offsetProducerEpoch:]))
	h.BaseSequence = int32(be.Uint32(b[offsetBaseSequence:]))
	h.RecordCount = int32(be.Uint32(b[offsetRecordCount:]))
	if h.Magic != Magic {
		return h, fmt.Errorf("%w: magic %d, only %d is supported", ErrCorrupt, h.Magic, Magic)
	}
	if h.BaseOffset < 0 {
		return h, fmt.Errorf("%w: negative base offset %d", ErrCorrupt, h.BaseOffset)
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorrupt, h.LastOffsetDelta)
	}
	if h.RecordCount < 0 {
		return h, fmt.Errorf("%w: negative record count %d", ErrCorrupt, h.RecordCount)
	}
	if c := h.Attributes.Compression(); c > CodecZstd {
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, int8(c))
	}
	return h, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ComputeCRC returns the CRC-32C of a batch: over the bytes from the
// attributes field to the end. b must be exactly one batch.
func ComputeCRC(b []byte) uint32 {
	return crc32.Checksum(b[offsetAttributes:], castagnoli)
}

// Validate checks that b is exactly one well-formed batch: a plausible header
// whose length matches len(b) and a correct CRC. It does not decompress or
// decode the records.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if size := h.TotalBytes(); size != len(b) {
		if size > len(b) {
			return h, fmt.Errorf("%w: batch is %d bytes, only %d present", ErrTruncated, size, len(b))
		}
		return h, fmt.Errorf("%w: batch is %d bytes, but %d were given", ErrCorrupt, size, len(b))
	}
	if crc := ComputeCRC(b); crc != h.CRC {
		return h, fmt.Errorf("%w: crc mismatch: stored %#08x, computed %#08x", ErrCorrupt, h.CRC, crc)
	}
	return h, nil
}

// SetBaseOffset stores base as the batch's base offset. The CRC does not cover
// this field, so the batch stays valid.
func SetBaseOffset(b []byte, base int64) {
	binary.BigEndian.PutUint64(b[offsetBaseOffset:], uint64(base))
}

// SetPartitionLeaderEpoch stores epoch as the batch's partition leader epoch.
// The CRC does not cover this field, so the batch stays valid.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offsetPartitionLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestampLogAppend marks the batch's timestamps as log-append time and
// stores ts as its max timestamp, as a broker does for topics with
// message.timestamp.type=LogAppendTime. Both fields are covered by the CRC,
// which is recomputed.
func SetMaxTimestampLogAppend(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := Attributes(be.Uint16(b[offsetAttributes:])) | AttrTimestampLogAppend
	be.PutUint16(b[offsetAttributes:], uint16(attrs))
	be.PutUint64(b[offsetMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offsetCRC:], ComputeCRC(b))
}
