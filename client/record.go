package client

import (
	"fmt"

	"github.com/kafkasim/kafkasim/core/record"
)

// Record is a record to produce, or a record consumed. Key and Value keep
// null (nil) apart from empty, as Kafka does.
type Record struct {
	Topic string
	// Partition is where the record goes (with PartitionerManual) or came
	// from; the producer fills it in when it partitions a record.
	Partition int32
	// Offset is the record's offset in its partition; set on consumed
	// records and in the Result of a successful produce.
	Offset int64
	// Timestamp is in milliseconds since the Unix epoch. Zero makes the
	// producer stamp the record with its clock's time.
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []record.RecordHeader
	// LeaderEpoch is the leader epoch of the batch a consumed record came
	// from (-1 if unknown).
	LeaderEpoch int32
	// FetchID numbers, on a consumed record, the Fetch request that
	// returned it (the consumer counts them from 1). With the consumer's
	// OnFetchSent and OnFetchReceived hooks it tells when the broker
	// served the record, which may be long before Poll hands it over.
	FetchID uint64
}

// Outcome classifies the fate of a produced record. The simulator's checker
// relies on it; docs/client.md states the rules.
type Outcome uint8

const (
	// OutcomeOK: the broker acknowledged the record at Result.Offset.
	OutcomeOK Outcome = iota + 1
	// OutcomeDefiniteFailure: the record is certainly not in the log and
	// never will be: no attempt to write it can have taken effect.
	OutcomeDefiniteFailure
	// OutcomeIndefinite: the record may or may not be in the log, now or
	// later (a request that may still be executed was sent).
	OutcomeIndefinite
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeDefiniteFailure:
		return "definite-failure"
	case OutcomeIndefinite:
		return "indefinite"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Result is the fate of one produced record, handed to its done callback.
type Result struct {
	// Record is the record as produced, with Partition filled in once it was
	// partitioned and Offset set when Outcome is OutcomeOK (else -1).
	Record    Record
	Topic     string
	Partition int32
	// Offset is the record's offset when Outcome is OutcomeOK, else -1.
	Offset  int64
	Err     error
	Outcome Outcome
	// ProducerID, ProducerEpoch and Sequence are the idempotent identity
	// the record was last sent with: the producer id and epoch of its
	// batch, and its own sequence number (the batch's base sequence plus
	// its index in the batch). They let a checker find a record's
	// predecessor (sequence one less under the same id and epoch), which
	// the broker must have appended first. All three are -1 when the
	// record was never numbered (a producer without idempotence, or a
	// batch that never left the producer).
	ProducerID    int64
	ProducerEpoch int16
	Sequence      int32
	// BatchBytes is the encoded size of the batch the record was last sent
	// in, and BatchRecords the number of records in it (0 when the batch
	// was never encoded). The broker stores a batch as it arrives, so the
	// producer knows how many log bytes its records take.
	BatchBytes   int
	BatchRecords int
	// BrokerError is the Kafka error (a *kerr.Error) the broker answered
	// the last attempt of the record's batch with, when the outcome is not
	// OK; nil when that attempt got no answer (it may have appended the
	// batch) or the batch was never sent.
	// Unlike Err, it is never an error the producer raised itself for
	// several batches at once (a reset of its identity fails every batch
	// numbered under the old one with the cause of the reset).
	BrokerError error
	// BrokerErrorLeaderEpoch is the leader epoch the cluster metadata gave
	// the broker that answered BrokerError, as the leader of the record's
	// partition, when that attempt was sent; -1 when unknown or without a
	// BrokerError. A deposed leader that has not heard of its successor
	// still answers in its old epoch.
	BrokerErrorLeaderEpoch int32
}

// recordOverheadBytesMax bounds the encoding overhead of one record beyond
// its key, value and header bytes: the length, attributes, timestamp and
// offset deltas and the key, value and header-count lengths, all varints.
const recordOverheadBytesMax = 1 + 5 + 10 + 5 + 5 + 5 + 5

// headerOverheadBytesMax bounds the overhead of one header: two lengths.
const headerOverheadBytesMax = 10

// sizeBytes estimates (from above) the uncompressed size of a record in a
// batch.
func (r *Record) sizeBytes() int {
	n := recordOverheadBytesMax + len(r.Key) + len(r.Value)
	for i := range r.Headers {
		n += headerOverheadBytesMax + len(r.Headers[i].Key) + len(r.Headers[i].Value)
	}
	return n
}

// toBatchRecord converts r for record.AppendBatch.
func (r *Record) toBatchRecord() record.Record {
	return record.Record{Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers}
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// less orders partitions by topic, then partition.
func (tp TopicPartition) less(other TopicPartition) bool {
	if tp.Topic != other.Topic {
		return tp.Topic < other.Topic
	}
	return tp.Partition < other.Partition
}

// compareTopicPartition orders partitions for slices.SortFunc.
func compareTopicPartition(a, b TopicPartition) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}
