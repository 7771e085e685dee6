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
package record
