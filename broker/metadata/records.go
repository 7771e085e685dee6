package metadata

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RecordKind names a record type. The numbers are the API keys Kafka gives
// the same records in its metadata log (MetadataRecordType), so a reader who
// knows KRaft recognises them; the encodings are our own (see Encode).
type RecordKind uint32

// The record kinds this package applies.
const (
	RegisterBrokerKind  RecordKind = 0
	TopicKind           RecordKind = 2
	PartitionKind       RecordKind = 3
	ConfigKind          RecordKind = 4
	PartitionChangeKind RecordKind = 5
	FenceBrokerKind     RecordKind = 7
	UnfenceBrokerKind   RecordKind = 8
	RemoveTopicKind     RecordKind = 9
	// ControlledShutdownKind is the key of Kafka's
	// BrokerRegistrationChangeRecord, whose InControlledShutdown field is
	// the one change of a registration we record.
	ControlledShutdownKind RecordKind = 17
	// ProducerIdsKind is Kafka's ProducerIdsRecord: the next producer id
	// the controller will hand out (KIP-730).
	ProducerIdsKind RecordKind = 15
	// BatchKind has no Kafka counterpart: Kafka commits several records
	// atomically as one batch of its Raft log, while one entry of our Raft
	// log holds one byte string, so a batch is a record of records.
	BatchKind RecordKind = 1000
)

// frameVersion is the version of the frame around every record (kind and
// record version), as Kafka's metadata record serde starts each record with
// a frame version. A reader refuses frames it does not know.
const frameVersion = 1

// recordVersion is the only version of every record body so far. A body
// that changes gets a new version and Decode keeps reading the old ones.
const recordVersion = 0

// Bounds on what one record may hold. They keep a corrupt or hostile record
// from making the decoder allocate without limit.
const (
	replicasMax          = 128
	topicNameBytesMax    = 249
	configNameBytesMax   = 255
	configValueBytesMax  = 1 << 16
	resourceNameBytesMax = 255
	// ListenersMax bounds the listeners of one broker registration, and
	// ListenerBytesMax the length of a listener's name and host.
	ListenersMax     = 16
	ListenerBytesMax = 255
	// BatchRecordsMax bounds the records of one BatchRecord. The controller
	// never proposes more (a broker leads or follows far fewer partitions,
	// and requests are bounded below it), and the decoder refuses more.
	BatchRecordsMax = 1 << 20
)

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("malformed metadata record")

// TopicID is a topic's UUID, as Metadata v10+ and Kafka's TopicRecord carry it.
type TopicID [16]byte

// IsZero reports whether the ID is all zeros, which Kafka reserves for "no ID".
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String formats the ID as hexadecimal, for error messages.
func (id TopicID) String() string { return fmt.Sprintf("%x", id[:]) }

// Record is one entry of the metadata log. Only this package's record types
// implement it.
type Record interface {
	// Kind returns the record's type.
	Kind() RecordKind
	appendBody(dst []byte) []byte
	readBody(reader *kbin.Reader)
}

// RegisterBrokerRecord registers a broker, or registers a new incarnation of
// it with a larger broker epoch (KIP-631). A broker registers fenced and is
// unfenced once it has caught up; Fenced is false only in snapshots, which
// restate a broker that was already unfenced. IncarnationID is the random ID
// a broker process draws at start (BrokerRegistration's IncarnationId), by
// which a controller, even a newly elected one, tells a broker retrying its
// registration from a second process claiming the same broker ID.
type RegisterBrokerRecord struct {
	BrokerID      int32
	BrokerEpoch   int64
	IncarnationID [16]byte
	Fenced        bool
	// Listeners are the endpoints the broker advertised for clients
	// (BrokerRegistration's Listeners), which Metadata hands out.
	Listeners []Listener
}

// Listener is one endpoint a broker advertises: a listener name and where
// clients reach it.
type Listener struct {
	Name string
	Host string
	Port uint16
}

// FenceBrokerRecord fences the named incarnation of a broker: it may lead
// nothing until it is unfenced.
type FenceBrokerRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// UnfenceBrokerRecord unfences the named incarnation of a broker.
type UnfenceBrokerRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// ControlledShutdownRecord marks the named incarnation of an unfenced broker
// as shutting down (KIP-841), as Kafka's BrokerRegistrationChangeRecord with
// InControlledShutdown does: from then on it may lead nothing, and it stays
// so until it is fenced and registers again. The controller moves its
// leaderships away in the same batch, before this record.
type ControlledShutdownRecord struct {
	BrokerID    int32
	BrokerEpoch int64
}

// RemoveTopicRecord deletes a topic with its partitions and configurations
// (DeleteTopics). Its name may be used again at once, with a new ID.
type RemoveTopicRecord struct {
	ID TopicID
}

// ProducerIdsRecord records that the controller gave broker BrokerID (at
// BrokerEpoch) a block of producer ids ending just before NextProducerID,
// the first id of the next block (Kafka's ProducerIdsRecord, KIP-730). The
// next id only grows, so no id is handed out twice across the cluster.
type ProducerIdsRecord struct {
	BrokerID       int32
	BrokerEpoch    int64
	NextProducerID int64
}

// BatchRecord is several records committed as one entry: Apply applies all
// of them or, when any does not fit, none. The active controller proposes
// one batch per decision (a request, a fenced session, a rebalance), so
// that a crash or a lost leadership never commits half of one, such as a
// topic without all its partitions. A batch holds at least one record and
// no batch.
type BatchRecord struct {
	Records []Record
}

// TopicRecord creates a topic with its ID. Its partitions follow as
// PartitionRecords.
type TopicRecord struct {
	Name string
	ID   TopicID
}

// PartitionState is the full state of one partition, as both PartitionRecord
// and PartitionChangeRecord carry it. Leader is -1 when the partition has no
// leader. ELR holds the eligible leader replicas of KIP-966: replicas outside
// the ISR that are known to hold every committed record. LeaderRecovering is
// Kafka's LeaderRecoveryState RECOVERING: the leader was elected uncleanly
// and may lack records the old ISR had acknowledged.
type PartitionState struct {
	TopicID          TopicID
	Partition        int32
	Replicas         []int32
	ISR              []int32
	ELR              []int32
	Leader           int32
	LeaderEpoch      int32
	PartitionEpoch   int32
	LeaderRecovering bool
}

// PartitionRecord creates a partition (or restates it in a snapshot).
type PartitionRecord struct {
	PartitionState
}

// PartitionChangeRecord replaces a partition's state. Unlike Kafka's record,
// which carries only the changed fields and lets every reader derive the new
// epochs, ours carries the whole new state with its epochs, so that Apply can
// check the controller's arithmetic instead of repeating it.
type PartitionChangeRecord struct {
	PartitionState
}

// ConfigResource names what a configuration applies to: a topic by name, or
// a broker by its decimal ID ("" for the cluster-wide broker default), with
// Kafka's resource type numbers.
type ConfigResource struct {
	Type kmsg.ConfigResourceType
	Name string
}

// ConfigRecord sets one configuration of a resource, or deletes it when Value
// is nil.
type ConfigRecord struct {
	Resource ConfigResource
	Name     string
	Value    *string
}

// Kind implements Record.
func (*RegisterBrokerRecord) Kind() RecordKind { return RegisterBrokerKind }

// Kind implements Record.
func (*FenceBrokerRecord) Kind() RecordKind { return FenceBrokerKind }

// Kind implements Record.
func (*UnfenceBrokerRecord) Kind() RecordKind { return UnfenceBrokerKind }

// Kind implements Record.
func (*ControlledShutdownRecord) Kind() RecordKind { return ControlledShutdownKind }

// Kind implements Record.
func (*RemoveTopicRecord) Kind() RecordKind { return RemoveTopicKind }

// Kind implements Record.
func (*ProducerIdsRecord) Kind() RecordKind { return ProducerIdsKind }

// Kind implements Record.
func (*BatchRecord) Kind() RecordKind { return BatchKind }

// Kind implements Record.
func (*TopicRecord) Kind() RecordKind { return TopicKind }

// Kind implements Record.
func (*PartitionRecord) Kind() RecordKind { return PartitionKind }

// Kind implements Record.
func (*PartitionChangeRecord) Kind() RecordKind { return PartitionChangeKind }

// Kind implements Record.
func (*ConfigRecord) Kind() RecordKind { return ConfigKind }

// newRecord returns an empty record of the kind, or nil for an unknown kind.
func newRecord(kind RecordKind) Record {
	switch kind {
	case RegisterBrokerKind:
		return &RegisterBrokerRecord{}
	case FenceBrokerKind:
		return &FenceBrokerRecord{}
	case UnfenceBrokerKind:
		return &UnfenceBrokerRecord{}
	case TopicKind:
		return &TopicRecord{}
	case PartitionKind:
		return &PartitionRecord{}
	case PartitionChangeKind:
		return &PartitionChangeRecord{}
	case ConfigKind:
		return &ConfigRecord{}
	case ControlledShutdownKind:
		return &ControlledShutdownRecord{}
	case ProducerIdsKind:
		return &ProducerIdsRecord{}
	case RemoveTopicKind:
		return &RemoveTopicRecord{}
	case BatchKind:
		return &BatchRecord{}
	}
	return nil
}

// Encode returns the record's bytes: a frame (frame version, kind and record
// version as unsigned varints, as Kafka frames its metadata records) and the
// body in Kafka's wire primitives (big-endian integers, compact strings and
// arrays, UUIDs). The encoding is a pure function of the record's fields, so
// every controller writes identical bytes for identical records. kmsg has no
// metadata record types (Kafka keeps them out of the client protocol), which
// is why the bodies are our own.
func Encode(record Record) []byte {
	dst := kbin.AppendUvarint(nil, frameVersion)
	dst = kbin.AppendUvarint(dst, uint32(record.Kind()))
	dst = kbin.AppendUvarint(dst, recordVersion)
	return record.appendBody(dst)
}

// Decode parses bytes written by Encode. It refuses unknown frame versions,
// kinds and record versions, truncated bodies, lists or strings beyond their
// bounds, trailing bytes and batches that are empty or nested, each with an
// error wrapping ErrMalformed.
func Decode(data []byte) (Record, error) {
	return decode(data, true)
}

// decode is Decode; a batch is refused unless batchAllowed, which the batch
// body clears for its members so that recursion never goes deeper than one.
func decode(data []byte, batchAllowed bool) (Record, error) {
	reader := kbin.Reader{Src: data}
	frame := reader.Uvarint()
	kind := RecordKind(reader.Uvarint())
	version := reader.Uvarint()
	if !reader.Ok() {
		return nil, fmt.Errorf("%w: truncated frame", ErrMalformed)
	}
	if frame != frameVersion {
		return nil, fmt.Errorf("%w: unknown frame version %d", ErrMalformed, frame)
	}
	record := newRecord(kind)
	if kind == BatchKind && !batchAllowed {
		return nil, fmt.Errorf("%w: a batch inside a batch", ErrMalformed)
	}
	if record == nil {
		return nil, fmt.Errorf("%w: unknown record kind %d", ErrMalformed, kind)
	}
	if version != recordVersion {
		return nil, fmt.Errorf("%w: unknown version %d of record kind %d", ErrMalformed, version, kind)
	}
	record.readBody(&reader)
	if !reader.Ok() {
		return nil, fmt.Errorf("%w: truncated or oversized body of record kind %d", ErrMalformed, kind)
	}
	if len(reader.Src) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after record kind %d", ErrMalformed, len(reader.Src), kind)
	}
	// Varints can be padded; refusing every encoding but Encode's keeps one
	// set of bytes per record, so replicas and snapshots compare by bytes.
	if !bytes.Equal(Encode(record), data) {
		return nil, fmt.Errorf("%w: non-canonical encoding of record kind %d", ErrMalformed, kind)
	}
	return record, nil
}

// appendBrokerEpoch and readBrokerEpoch encode the broker id and broker
// epoch that open every broker record.
func appendBrokerEpoch(dst []byte, id int32, epoch int64) []byte {
	return kbin.AppendInt64(kbin.AppendInt32(dst, id), epoch)
}

func readBrokerEpoch(reader *kbin.Reader) (int32, int64) {
	id := reader.Int32()
	return id, reader.Int64()
}

func (r *RegisterBrokerRecord) appendBody(dst []byte) []byte {
	dst = kbin.AppendUuid(appendBrokerEpoch(dst, r.BrokerID, r.BrokerEpoch), r.IncarnationID)
	dst = kbin.AppendBool(dst, r.Fenced)
	dst = kbin.AppendCompactArrayLen(dst, len(r.Listeners))
	for _, l := range r.Listeners {
		dst = kbin.AppendCompactString(dst, l.Name)
		dst = kbin.AppendCompactString(dst, l.Host)
		dst = kbin.AppendUint16(dst, l.Port)
	}
	return dst
}

func (r *RegisterBrokerRecord) readBody(reader *kbin.Reader) {
	r.BrokerID, r.BrokerEpoch = readBrokerEpoch(reader)
	r.IncarnationID = reader.Uuid()
	r.Fenced = readBool(reader)
	length := reader.Uvarint()
	if length == 0 || length-1 > ListenersMax {
		poison(reader)
		return
	}
	r.Listeners = nil
	for range length - 1 {
		name := readString(reader, ListenerBytesMax)
		host := readString(reader, ListenerBytesMax)
		r.Listeners = append(r.Listeners, Listener{Name: name, Host: host, Port: reader.Uint16()})
	}
}

func (r *ControlledShutdownRecord) appendBody(dst []byte) []byte {
	return appendBrokerEpoch(dst, r.BrokerID, r.BrokerEpoch)
}

func (r *ControlledShutdownRecord) readBody(reader *kbin.Reader) {
	r.BrokerID, r.BrokerEpoch = readBrokerEpoch(reader)
}

func (r *ProducerIdsRecord) appendBody(dst []byte) []byte {
	return kbin.AppendInt64(appendBrokerEpoch(dst, r.BrokerID, r.BrokerEpoch), r.NextProducerID)
}

func (r *ProducerIdsRecord) readBody(reader *kbin.Reader) {
	r.BrokerID, r.BrokerEpoch = readBrokerEpoch(reader)
	r.NextProducerID = reader.Int64()
}

func (r *RemoveTopicRecord) appendBody(dst []byte) []byte {
	return kbin.AppendUuid(dst, r.ID)
}

func (r *RemoveTopicRecord) readBody(reader *kbin.Reader) {
	r.ID = reader.Uuid()
}

// appendBody writes the records as a compact array of compact byte strings,
// each one record's Encode bytes, frame included.
func (r *BatchRecord) appendBody(dst []byte) []byte {
	dst = kbin.AppendCompactArrayLen(dst, len(r.Records))
	for _, record := range r.Records {
		dst = kbin.AppendCompactBytes(dst, Encode(record))
	}
	return dst
}

// readBody refuses an empty batch, a nested batch and any record Decode
// refuses, so a decoded batch is always flat.
func (r *BatchRecord) readBody(reader *kbin.Reader) {
	length := reader.Uvarint()
	if length <= 1 || length-1 > BatchRecordsMax {
		poison(reader)
		return
	}
	r.Records = make([]Record, 0, min(length-1, 1024))
	for range length - 1 {
		data := reader.CompactBytes()
		if !reader.Ok() {
			return
		}
		record, err := decode(data, false)
		if err != nil {
			poison(reader)
			return
		}
		r.Records = append(r.Records, record)
	}
}

func (r *FenceBrokerRecord) appendBody(dst []byte) []byte {
	return appendBrokerEpoch(dst, r.BrokerID, r.BrokerEpoch)
}

func (r *FenceBrokerRecord) readBody(reader *kbin.Reader) {
	r.BrokerID, r.BrokerEpoch = readBrokerEpoch(reader)
}

func (r *UnfenceBrokerRecord) appendBody(dst []byte) []byte {
	return appendBrokerEpoch(dst, r.BrokerID, r.BrokerEpoch)
}

func (r *UnfenceBrokerRecord) readBody(reader *kbin.Reader) {
	r.BrokerID, r.BrokerEpoch = readBrokerEpoch(reader)
}

func (r *TopicRecord) appendBody(dst []byte) []byte {
	dst = kbin.AppendCompactString(dst, r.Name)
	return kbin.AppendUuid(dst, r.ID)
}

func (r *TopicRecord) readBody(reader *kbin.Reader) {
	r.Name = readString(reader, topicNameBytesMax)
	r.ID = reader.Uuid()
}

func (r *PartitionRecord) appendBody(dst []byte) []byte {
	return r.PartitionState.appendBody(dst)
}

func (r *PartitionRecord) readBody(reader *kbin.Reader) {
	r.PartitionState.readBody(reader)
}

func (r *PartitionChangeRecord) appendBody(dst []byte) []byte {
	return r.PartitionState.appendBody(dst)
}

func (r *PartitionChangeRecord) readBody(reader *kbin.Reader) {
	r.PartitionState.readBody(reader)
}

func (s *PartitionState) appendBody(dst []byte) []byte {
	dst = kbin.AppendUuid(dst, s.TopicID)
	dst = kbin.AppendInt32(dst, s.Partition)
	dst = appendBrokers(dst, s.Replicas)
	dst = appendBrokers(dst, s.ISR)
	dst = appendBrokers(dst, s.ELR)
	dst = kbin.AppendInt32(dst, s.Leader)
	dst = kbin.AppendInt32(dst, s.LeaderEpoch)
	dst = kbin.AppendInt32(dst, s.PartitionEpoch)
	return kbin.AppendBool(dst, s.LeaderRecovering)
}

func (s *PartitionState) readBody(reader *kbin.Reader) {
	s.TopicID = reader.Uuid()
	s.Partition = reader.Int32()
	s.Replicas = readBrokers(reader)
	s.ISR = readBrokers(reader)
	s.ELR = readBrokers(reader)
	s.Leader = reader.Int32()
	s.LeaderEpoch = reader.Int32()
	s.PartitionEpoch = reader.Int32()
	s.LeaderRecovering = readBool(reader)
}

func (r *ConfigRecord) appendBody(dst []byte) []byte {
	dst = kbin.AppendInt8(dst, int8(r.Resource.Type))
	dst = kbin.AppendCompactString(dst, r.Resource.Name)
	dst = kbin.AppendCompactString(dst, r.Name)
	return kbin.AppendCompactNullableString(dst, r.Value)
}

func (r *ConfigRecord) readBody(reader *kbin.Reader) {
	r.Resource.Type = kmsg.ConfigResourceType(reader.Int8())
	r.Resource.Name = readString(reader, resourceNameBytesMax)
	r.Name = readString(reader, configNameBytesMax)
	length := reader.Uvarint()
	if length == 0 {
		r.Value = nil
		return
	}
	value := readSpan(reader, length-1, configValueBytesMax)
	r.Value = &value
}

// appendBrokers writes a list of broker IDs as a compact array. A nil and an
// empty list encode alike, and readBrokers returns an empty list for both,
// so that a decoded record compares equal to an encoded one.
func appendBrokers(dst []byte, brokers []int32) []byte {
	dst = kbin.AppendCompactArrayLen(dst, len(brokers))
	for _, broker := range brokers {
		dst = kbin.AppendInt32(dst, broker)
	}
	return dst
}

func readBrokers(reader *kbin.Reader) []int32 {
	length := reader.Uvarint()
	if length == 0 || length-1 > replicasMax {
		poison(reader)
		return []int32{}
	}
	brokers := make([]int32, 0, length-1)
	for range length - 1 {
		brokers = append(brokers, reader.Int32())
	}
	return brokers
}

func readString(reader *kbin.Reader, bytesMax uint32) string {
	length := reader.Uvarint()
	if length == 0 {
		poison(reader)
		return ""
	}
	return readSpan(reader, length-1, bytesMax)
}

func readSpan(reader *kbin.Reader, length, bytesMax uint32) string {
	if length > bytesMax {
		poison(reader)
		return ""
	}
	return string(reader.Span(int(length)))
}

// readBool accepts only 0 and 1, so that every accepted record has exactly
// one encoding and a snapshot re-encodes to the same bytes.
func readBool(reader *kbin.Reader) bool {
	value := reader.Int8()
	if value != 0 && value != 1 {
		poison(reader)
	}
	return value == 1
}

// poison marks the reader as failed: kbin.Reader has no exported way to do
// so, and asking for more bytes than remain does it.
func poison(reader *kbin.Reader) {
	reader.Span(len(reader.Src) + 1)
}
