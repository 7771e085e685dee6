package broker

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kbin"
)

// This file encodes Fetch responses (versions 4-15) by hand, straight into
// the frame that goes to the network, so that a partition's record batches
// are read from the log file directly into their place in the response:
// the file bytes are copied once (by the read) before the socket takes
// them, and nothing else is built per fetch. kmsg's FetchResponse.AppendTo
// is the reference: TestFetchFrameMatchesKmsg compares the two byte for
// byte for every version and shape the broker produces.

// fetchFlexibleVersionMin is the first Fetch version with flexible
// encoding (compact arrays, strings and bytes, and tagged fields).
const fetchFlexibleVersionMin = 12

// fetchFrame builds one Fetch response frame. The caller appends the
// topics and partitions in the order they were announced to begin and
// beginTopic.
type fetchFrame struct {
	version  int16
	flexible bool
	buf      []byte
}

// begin starts the frame: the response header (correlation id, and for
// flexible versions an empty tag section), then the fields before the
// topic array, then the array's length.
func (f *fetchFrame) begin(buf []byte, version int16, correlationID int32, errorCode int16, topics int) {
	f.version, f.flexible, f.buf = version, version >= fetchFlexibleVersionMin, buf[:0]
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(correlationID))
	if f.flexible {
		f.buf = append(f.buf, 0) // response header v1: no tagged fields
	}
	f.buf = binary.BigEndian.AppendUint32(f.buf, 0) // throttle time
	if f.version >= 7 {
		f.buf = binary.BigEndian.AppendUint16(f.buf, uint16(errorCode))
		f.buf = binary.BigEndian.AppendUint32(f.buf, 0) // session id: no sessions
	}
	f.appendArrayLen(topics)
}

// fetchTopicIDVersionMin is the first Fetch version that names topics by
// id (KIP-516) instead of by name.
const fetchTopicIDVersionMin = 13

// beginTopic starts a topic and its partition array: the topic's name, or
// from version 13 its id.
func (f *fetchFrame) beginTopic(name string, id [16]byte, partitions int) {
	switch {
	case f.version >= fetchTopicIDVersionMin:
		f.buf = append(f.buf, id[:]...)
	case f.flexible:
		f.buf = kbin.AppendUvarint(f.buf, uint32(len(name)+1))
		f.buf = append(f.buf, name...)
	default:
		f.buf = binary.BigEndian.AppendUint16(f.buf, uint16(len(name)))
		f.buf = append(f.buf, name...)
	}
	f.appendArrayLen(partitions)
}

// endTopic closes a topic (its empty tag section in flexible versions).
func (f *fetchFrame) endTopic() {
	if f.flexible {
		f.buf = append(f.buf, 0)
	}
}

// end closes the response (its empty tag section) and returns the frame.
func (f *fetchFrame) end() []byte {
	if f.flexible {
		f.buf = append(f.buf, 0)
	}
	return f.buf
}

func (f *fetchFrame) appendArrayLen(n int) {
	if f.flexible {
		f.buf = kbin.AppendUvarint(f.buf, uint32(n+1))
	} else {
		f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(n))
	}
}

// fetchPartitionHeader is what precedes a partition's record batches.
type fetchPartitionHeader struct {
	partition      int32
	errorCode      int16
	highWatermark  int64
	lastStable     int64
	logStartOffset int64
}

// divergingEpoch is the tagged field a leader adds to a follower's
// partition whose log diverged from its own (Fetch v12+, KIP-595 and
// KAFKA-10554): the largest epoch at most the follower's last fetched one
// that the leader holds, and where that epoch ends in the leader's log.
// The zero value (set false) adds nothing.
type divergingEpoch struct {
	set       bool
	epoch     int32
	endOffset int64
}

// divergingEpochBytes is the size of the DivergingEpoch struct as a tagged
// field value: epoch, end offset and its own empty tag section.
const divergingEpochBytes = 4 + 8 + 1

// beginPartition appends a partition's fields up to its record bytes and
// reserves their length prefix, sized for recordBytesMax bytes. It returns
// the position of the prefix, for endPartition.
func (f *fetchFrame) beginPartition(h fetchPartitionHeader, recordBytesMax int) int {
	f.beginPartitionFields(h)
	prefixAt := len(f.buf)
	f.buf = append(f.buf, make([]byte, f.prefixBytes(recordBytesMax))...)
	return prefixAt
}

// beginPartitionFields appends a partition's fields before its record
// bytes.
func (f *fetchFrame) beginPartitionFields(h fetchPartitionHeader) {
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(h.partition))
	f.buf = binary.BigEndian.AppendUint16(f.buf, uint16(h.errorCode))
	f.buf = binary.BigEndian.AppendUint64(f.buf, uint64(h.highWatermark))
	f.buf = binary.BigEndian.AppendUint64(f.buf, uint64(h.lastStable))
	if f.version >= 5 {
		f.buf = binary.BigEndian.AppendUint64(f.buf, uint64(h.logStartOffset))
	}
	// No aborted transactions: a null array, as kmsg writes a nil slice.
	if f.flexible {
		f.buf = append(f.buf, 0)
	} else {
		f.buf = binary.BigEndian.AppendUint32(f.buf, 0xffff_ffff)
	}
	if f.version >= 11 {
		f.buf = binary.BigEndian.AppendUint32(f.buf, 0xffff_ffff) // no preferred read replica
	}
}

// prefixBytes is the size of the length prefix of size record bytes: a
// fixed int32, or the uvarint of size+1 (compact bytes).
func (f *fetchFrame) prefixBytes(size int) int {
	if !f.flexible {
		return 4
	}
	return kbin.UvarintLen(uint32(size + 1))
}

// endPartition writes the length prefix reserved at prefixAt for the
// record bytes appended since, then the partition's tag section (with
// diverging, if set; flexible versions only).
// The prefix of a compact length was sized for the most bytes the read
// could return; when the read returned fewer (a shorter uvarint), the
// record bytes move back to close the gap, which is at most a few KiB
// for the common case because the prefix only shrinks when the data is
// far below the budget. When the read returned more (one batch above the
// budget, so that the consumer makes progress) they move forward.
func (f *fetchFrame) endPartition(prefixAt, reservedBytes int, diverging divergingEpoch) {
	dataAt := prefixAt + reservedBytes
	size := len(f.buf) - dataAt
	if !f.flexible {
		binary.BigEndian.PutUint32(f.buf[prefixAt:], uint32(size))
		return
	}
	needed := f.prefixBytes(size)
	switch {
	case needed < reservedBytes:
		copy(f.buf[prefixAt+needed:], f.buf[dataAt:])
		f.buf = f.buf[:len(f.buf)-(reservedBytes-needed)]
	case needed > reservedBytes:
		f.buf = append(f.buf, make([]byte, needed-reservedBytes)...)
		copy(f.buf[prefixAt+needed:], f.buf[dataAt:dataAt+size])
	}
	kbin.AppendUvarint(f.buf[prefixAt:prefixAt], uint32(size+1))
	f.appendPartitionTags(diverging)
}

// appendPartitionTags appends a partition's tag section: empty, or the
// DivergingEpoch field (tag 0).
func (f *fetchFrame) appendPartitionTags(diverging divergingEpoch) {
	if !diverging.set {
		f.buf = append(f.buf, 0)
		return
	}
	f.buf = append(f.buf, 1, 0, divergingEpochBytes) // one field: tag 0, its size
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(diverging.epoch))
	f.buf = binary.BigEndian.AppendUint64(f.buf, uint64(diverging.endOffset))
	f.buf = append(f.buf, 0) // the struct's own empty tag section
}

// appendEmptyRecords writes an empty (not null) record set: librdkafka
// reads null record bytes as a size of -1.
func (f *fetchFrame) appendEmptyRecords() {
	prefixAt := len(f.buf)
	reserved := f.prefixBytes(0)
	f.buf = append(f.buf, make([]byte, reserved)...)
	f.endPartition(prefixAt, reserved, divergingEpoch{})
}

// beginPartitionError appends a partition that failed: its error code,
// offsets of -1 and an empty record set, as Kafka answers.
func (f *fetchFrame) beginPartitionError(partition int32, code int16) {
	f.beginPartitionFields(fetchPartitionHeader{partition: partition, errorCode: code,
		highWatermark: -1, lastStable: -1, logStartOffset: -1})
	f.appendEmptyRecords()
}
