// Package record implements Kafka's record batch format, magic v2: the one
// binary format that producers send, brokers store and consumers read.
//
// The broker's hot path treats a batch as opaque bytes: it validates the
// header and CRC (Validate), stamps the base offset and partition leader epoch
// in place (SetBaseOffset, SetPartitionLeaderEpoch; neither is covered by the
// CRC) and never decompresses. Clients and tests build and read the records
// inside a batch.
//
// Layout of a v2 batch (big endian; see the Kafka protocol documentation):
//
//	offset  size  field
//	0       8     baseOffset
//	8       4     batchLength (bytes after this field)
//	12      4     partitionLeaderEpoch
//	16      1     magic (2)
//	17      4     crc (CRC-32C of bytes 21 to the end)
//	21      2     attributes
//	23      4     lastOffsetDelta
//	27      8     baseTimestamp
//	35      8     maxTimestamp
//	43      8     producerId
//	51      2     producerEpoch
//	53      4     baseSequence
//	57      4     recordCount
//	61      ...   records (possibly compressed)
//
// Each record inside is (varint = zigzag varint, as Kafka writes them):
//
//	length          varint  bytes of the record after this field
//	attributes      int8    unused, written as 0
//	timestampDelta  varlong from baseTimestamp
//	offsetDelta     varint  from baseOffset
//	keyLength       varint  -1 for a null key
//	key             bytes
//	valueLength     varint  -1 for a null value
//	value           bytes
//	headerCount     varint
//	headers         headerKeyLength varint, headerKey, headerValueLength
//	                varint (-1 for null), headerValue
//
// # Building
//
// AppendBatch (or a reused Builder) appends a complete batch, CRC included,
// to a caller's buffer. Records are numbered consecutively; the base
// timestamp is the first record's and the max timestamp the largest, as in
// Kafka's producer. Building an uncompressed batch into a buffer with room
// allocates nothing; a reused Builder compresses without per-record
// allocation. AppendControlBatch writes a transaction commit or abort marker.
//
// # Reading
//
// Reader.Records validates a batch, decompresses its records section and
// hands each record to a callback with absolute offsets and timestamps
// (under log-append time, every record carries the batch's max timestamp).
// It checks the record count against the records present, that offset
// deltas strictly increase within lastOffsetDelta, that every length stays
// inside its record, and that no bytes trail the last record. Failures wrap
// ErrCorrupt (or ErrTruncated for a batch cut short) and say what is wrong;
// bad input never panics.
//
// # Compression
//
// gzip (multi-member accepted), snappy (raw block, or the xerial framing
// that Kafka's Java clients write), lz4 (standard LZ4 frames, as magic v2
// requires) and zstd frames are decoded. Output is bounded by
// DecompressedBytesMax; inflating past it is an ErrCorrupt error, checked
// before the memory is committed where the format declares its size. Batches
// are written as one gzip member, one raw snappy block, one LZ4 frame with
// 64 KiB blocks, or one zstd frame. The zstd encoder and decoder are shared
// package-wide and start no goroutines.
//
// The package is deterministic: it reads no clock, draws no randomness,
// starts no goroutines and does no I/O.
package record
