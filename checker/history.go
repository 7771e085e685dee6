package checker

import (
	"errors"
	"fmt"
)

// Limits on a history. They keep a malformed or runaway history from making
// the checker allocate without bound; a real simulation stays far below them.
const (
	// historyOpsMax bounds the number of operations in one history.
	historyOpsMax = 10_000_000
	// pollRecordsMax bounds the records returned by one poll.
	pollRecordsMax = 1 << 20
	// valueBytesMax bounds one produced or read value. Workload values are
	// short identifiers such as "p3-17".
	valueBytesMax = 1 << 16
	// topicBytesMax bounds a topic or group name, as Kafka does (249).
	topicBytesMax = 249
	// clientsMax bounds client ids: porcupine's visualization draws one lane
	// per client id, so ids must be small and dense.
	clientsMax = 1 << 16
	// memberIDBytesMax bounds a group member id. Kafka's are the client id
	// and a UUID; the bound only keeps a malformed history small.
	memberIDBytesMax = 1024
)

// Kind says what an operation did.
type Kind string

// The operation kinds.
const (
	// KindProduce appends one value to a partition (Op.Produce).
	KindProduce Kind = "produce"
	// KindPoll reads records of one partition from a fetch offset (Op.Poll).
	// The final drain after healing is recorded as polls with Final set.
	KindPoll Kind = "poll"
	// KindCommit commits a consumer group's offset for a partition (Op.Group).
	KindCommit Kind = "commit"
	// KindFetchCommitted reads a group's committed offset (Op.Group).
	KindFetchCommitted Kind = "fetch-committed"
	// KindSeek moves a consumer's position in a partition to Op.Group.Offset
	// by the user's choice (seek, reset, or a new assignment after a
	// rebalance). It excuses the next poll from the poll-order checks and the
	// group's next commit from the no-backward-commit check.
	KindSeek Kind = "seek"
	// KindTimeLookup asks a partition's leader for the first record whose
	// timestamp is at or after a target time (ListOffsets by timestamp,
	// KIP-79), with the answer in Op.Lookup. It moves nothing: a consumer
	// that then moves there records a KindSeek of its own.
	KindTimeLookup Kind = "time-lookup"
)

// Outcome is what the client learned about an operation's effect.
type Outcome string

// The outcomes.
const (
	// OutcomeOK means the operation took effect, with the recorded result.
	OutcomeOK Outcome = "ok"
	// OutcomeFail means the operation definitely did not take effect.
	OutcomeFail Outcome = "fail"
	// OutcomeIndefinite means the operation may or may not have taken effect,
	// at any time after its call: timeouts, broken connections,
	// NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND.
	OutcomeIndefinite Outcome = "indefinite"
)

// Acks values of a producer, with Kafka's numbering.
const (
	// AcksNone (acks=0): the producer waits for nothing and learns no offset,
	// so every acks=0 produce counts as indefinite whatever its outcome says.
	AcksNone int8 = 0
	// AcksLeader (acks=1): the leader appended the record.
	AcksLeader int8 = 1
	// AcksAll (acks=all, -1): every in-sync replica has the record.
	AcksAll int8 = -1
)

// Isolation is a consumer's isolation.level.
type Isolation string

// The isolation levels. The empty string means IsolationReadUncommitted.
const (
	IsolationReadUncommitted Isolation = "read_uncommitted"
	IsolationReadCommitted   Isolation = "read_committed"
)

// History is everything a simulation recorded about its clients: the
// operations in the order they were recorded (an operation's index in Ops is
// its name in every report, "op #12") and the end offsets observed after
// healing.
type History struct {
	Ops []Op `json:"ops"`
	// Ends are the high-water marks the simulator observed for each
	// partition after healing and before the final drain. The drain must
	// reach them (see AnomalyIncompleteDrain).
	Ends []End `json:"ends,omitempty"`
	// Retention is what the configuration lets retention delete; nil
	// means nothing may be deleted. The checker derives the legal log
	// start from it and the history (see Retention).
	Retention *Retention `json:"retention,omitempty"`
	// Groups are the delivery promises of the consumer groups whose polls
	// the history records (see checkDelivery). A group without a promise is
	// not checked for delivery.
	Groups []GroupPromise `json:"groups,omitempty"`
	// Damage is the simulator's record of the stored data it damaged at
	// rest (see damage.go): the checker's only evidence of damage.
	Damage []Damage `json:"damage,omitempty"`
	// Replication is the evidence about the partitions' replicas: the
	// high watermarks fetches saw and the logs read off the disks after
	// healing (replicas.go, highwatermark.go); nil when not recorded.
	Replication *Replication `json:"replication,omitempty"`
}

// End is the high-water mark of one partition observed after healing.
type End struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the partition's high-water mark: the offset the next
	// produced record would get; -1 when the broker would not tell (Error
	// is then set).
	Offset int64 `json:"offset"`
	// Start is the log start offset the broker reported at the same time.
	// It is the judged system's own account, so the checker uses it only
	// in explanations, never as evidence: the legal log start comes from
	// History.Retention and the history.
	Start int64 `json:"start,omitempty"`
	// Error is the Kafka error (its name) the broker kept answering for
	// the partition after healing, when the drain could not read it to its
	// end; empty when it could.
	Error string `json:"error,omitempty"`
}

// Op is one client operation. Exactly one of Produce, Poll, Group and
// Lookup is set, according to Kind (Group for commit, fetch-committed and
// seek, Lookup for time-lookup).
type Op struct {
	// Client identifies the logical client (a producer or a consumer). It is
	// porcupine's ClientId: small, dense and zero-based.
	Client int `json:"client"`
	// Process identifies the client's session: it changes when the client
	// restarts or is rebuilt (new producer id, new consumer without its
	// in-memory position). A consumer's new session counts as a reset.
	Process int  `json:"process"`
	Kind    Kind `json:"kind"`
	// Call and Return are virtual nanoseconds. Return == Call for an
	// instantaneous operation. For an indefinite outcome Return is when the
	// client gave up; the checker lets the effect happen any time after Call.
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	// Topic and Partition name the partition the operation touched.
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`

	Produce *Produce `json:"produce,omitempty"`
	Poll    *Poll    `json:"poll,omitempty"`
	Group   *Group   `json:"group,omitempty"`
	Lookup  *Lookup  `json:"lookup,omitempty"`
}

// Produce is the payload of a KindProduce operation.
//
// Values are unique per send: the workload never produces the same value
// twice, except that a non-idempotent producer's retries of one send are
// recorded as separate Indefinite operations with the same value (and the
// last, if acknowledged, as OK). Such a value may legitimately appear at
// several offsets (at-least-once delivery).
type Produce struct {
	Value      string `json:"value"`
	ProducerID int64  `json:"producer_id"`
	Idempotent bool   `json:"idempotent"`
	// Acks is AcksNone, AcksLeader or AcksAll.
	Acks int8 `json:"acks"`
	// Seq is the send order of this record within its producer: a later
	// send has a larger Seq. The per-producer order check compares acked
	// offsets with it.
	Seq int64 `json:"seq"`
	// Durable is set when the configuration promises that this write, once
	// acknowledged, survives every fault of the run (for example acks=all
	// in durable mode, or any acks without power loss). The simulator
	// decides it per operation from its promise table, never from what the
	// broker did. An acknowledged write without it is judged as indefinite:
	// it may be lost and its offset reused.
	Durable bool `json:"durable"`
	// Offset is the offset the broker assigned, when Outcome is OK and Acks
	// is not AcksNone.
	Offset int64 `json:"offset"`
	// Sequence is the Kafka identity the record was last sent with, when
	// an idempotent producer numbered it; nil when it was never numbered
	// or the client never reported it (its session crashed first).
	Sequence *SequenceNumber `json:"sequence,omitempty"`
	// BatchBytes is the encoded size of the batch the record was last sent
	// in and BatchRecords the number of records in it, 0 when unknown. A
	// Kafka broker stores a batch as the producer sent it, so together
	// they bound the log bytes the record takes (see the retention rule in
	// docs/checker.md).
	BatchBytes   int `json:"batch_bytes,omitempty"`
	BatchRecords int `json:"batch_records,omitempty"`
	// Timestamp is the record's timestamp (CreateTime, milliseconds since
	// the Unix epoch) exactly as the producer sent it, 0 when unknown.
	Timestamp int64 `json:"timestamp,omitempty"`
	// Error is the Kafka error the broker answered the send's last attempt
	// with (its name, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER), when the outcome
	// is not OK and the broker answered at all; empty otherwise.
	Error string `json:"error,omitempty"`
	// ErrorLeaderEpoch is the leader epoch the producer's cluster metadata
	// gave the broker that answered Error, as the partition's leader, when
	// it sent that attempt; nil when unknown. A deposed leader that has not
	// heard of its successor answers in its old epoch.
	ErrorLeaderEpoch *int32 `json:"error_leader_epoch,omitempty"`
}

// ErrorOutOfOrderSequence is Kafka's name for the error an idempotent
// producer's batch gets when its sequence does not follow the previous one.
const ErrorOutOfOrderSequence = "OUT_OF_ORDER_SEQUENCE_NUMBER"

// SequenceNumber is the idempotent identity of one produced record: the
// Kafka producer id and epoch of its batch and the record's own sequence
// number (the batch's base sequence plus the record's index in the batch).
// A broker appends a producer's records of one partition and epoch in
// sequence order without gaps (KIP-98).
type SequenceNumber struct {
	ProducerID int64 `json:"producer_id"`
	Epoch      int16 `json:"epoch"`
	Sequence   int32 `json:"sequence"`
}

// Poll is the payload of a KindPoll operation: one fetch of one partition.
type Poll struct {
	// Group is the consumer group, empty for a consumer without one.
	Group string `json:"group,omitempty"`
	// FetchOffset is the consumer's position when it fetched.
	FetchOffset int64 `json:"fetch_offset"`
	// Records are the returned records in the order returned. Only an OK
	// poll returns records.
	Records []Record `json:"records,omitempty"`
	// Reset is set when the consumer lost or changed its position since its
	// previous poll of this partition (seek, offset reset, rebalance) in a
	// way not recorded as a KindSeek operation.
	Reset bool `json:"reset,omitempty"`
	// OutOfRange marks a reset that followed OFFSET_OUT_OF_RANGE: the
	// broker refused FetchOffset, the consumer's position then, and the
	// consumer reset to the log start (auto.offset.reset=earliest), where
	// Records begin. It implies Reset.
	OutOfRange bool      `json:"out_of_range,omitempty"`
	Isolation  Isolation `json:"isolation,omitempty"`
	// Final marks the drain after healing: together, the final polls of a
	// partition read it from its start to its end.
	Final bool `json:"final,omitempty"`
	// Error is why a poll that is not ok failed, when known: the Kafka
	// error the broker answered for the partition (its name), or
	// ErrorCorruptMessage when the client found the fetched data invalid.
	Error string `json:"error,omitempty"`
}

// Record is one record returned by a poll.
type Record struct {
	Offset int64  `json:"offset"`
	Value  string `json:"value"`
	// LeaderEpoch is the partition leader epoch of the batch the record
	// came in, as the consumer received it: the epoch of the leader that
	// appended it (0 when unknown).
	LeaderEpoch int32 `json:"leader_epoch,omitempty"`
	// Timestamp is the record's timestamp as the consumer received it
	// (milliseconds), 0 when unknown.
	Timestamp int64 `json:"timestamp,omitempty"`
}

// Lookup is the payload of a KindTimeLookup operation.
type Lookup struct {
	// Target is the time asked for, in milliseconds.
	Target int64 `json:"target"`
	// Offset and Timestamp are the answer of an ok lookup: the record
	// found and its timestamp, or both -1 when the broker found none.
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
}

// Group is the payload of KindCommit, KindFetchCommitted and KindSeek.
type Group struct {
	// Group is the consumer group; required for commits and fetches, and
	// optional for a seek (a seek names the group whose commits it excuses).
	Group string `json:"group,omitempty"`
	// Offset is the committed offset (commit), the offset read back
	// (fetch-committed, -1 when nothing is committed) or the new position
	// (seek).
	Offset int64 `json:"offset"`
	// Member is the group membership a commit carried, with when its
	// client was handed it; nil when the commit carried none (generation
	// -1) or the client could not tell which SyncGroup answer confirmed
	// it. Only commits carry it. The stale-generation check reads from
	// these both the commits' memberships and the generations clients
	// were handed.
	Member *Member `json:"member,omitempty"`
}

// Member is a group membership as a client observed it: the member id
// and generation a JoinGroup answer handed it and a SyncGroup answer
// confirmed, with when that SyncGroup request was sent (SyncCall) and its
// answer arrived (SyncReturn), in virtual nanoseconds like Op.Call.
type Member struct {
	ID         string `json:"id"`
	Generation int32  `json:"generation"`
	SyncCall   int64  `json:"sync_call"`
	SyncReturn int64  `json:"sync_return"`
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// String renders tp as Kafka does, "topic-3".
func (tp TopicPartition) String() string {
	return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)
}

// less orders partitions by topic, then partition number.
func (tp TopicPartition) less(other TopicPartition) bool {
	if tp.Topic != other.Topic {
		return tp.Topic < other.Topic
	}
	return tp.Partition < other.Partition
}

// TopicPartition returns the partition op touched.
func (op *Op) TopicPartition() TopicPartition {
	return TopicPartition{Topic: op.Topic, Partition: op.Partition}
}

// ErrInvalidHistory is wrapped by every error Validate returns.
var ErrInvalidHistory = errors.New("invalid history")

// Validate reports the first way h breaks the history format, or nil. The
// checks assume a valid history; Check validates before checking.
func (h *History) Validate() error {
	if len(h.Ops) > historyOpsMax {
		return fmt.Errorf("%w: %d ops, at most %d", ErrInvalidHistory, len(h.Ops), historyOpsMax)
	}
	for i := range h.Ops {
		if err := validateOp(&h.Ops[i]); err != nil {
			return fmt.Errorf("%w: op #%d: %w", ErrInvalidHistory, i, err)
		}
	}
	if err := validateDamage(h.Damage); err != nil {
		return err
	}
	if err := validateEnds(h.Ends); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	if err := h.Retention.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	if err := validateGroups(h.Groups); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	if err := validateProducers(h.Ops); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	if err := h.Replication.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHistory, err)
	}
	return nil
}

func validateOp(op *Op) error {
	if op.Client < 0 || op.Client >= clientsMax {
		return fmt.Errorf("client %d outside [0, %d)", op.Client, clientsMax)
	}
	if op.Call < 0 || op.Return < op.Call {
		return fmt.Errorf("call %d and return %d: want 0 <= call <= return", op.Call, op.Return)
	}
	switch op.Outcome {
	case OutcomeOK, OutcomeFail, OutcomeIndefinite:
	default:
		return fmt.Errorf("unknown outcome %q", op.Outcome)
	}
	if err := validateName("topic", op.Topic); err != nil {
		return err
	}
	if op.Partition < 0 {
		return fmt.Errorf("negative partition %d", op.Partition)
	}
	set := 0
	for _, present := range []bool{op.Produce != nil, op.Poll != nil, op.Group != nil, op.Lookup != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%s op must carry exactly one payload, has %d", op.Kind, set)
	}
	switch op.Kind {
	case KindProduce:
		return validateProduce(op)
	case KindPoll:
		return validatePoll(op)
	case KindCommit, KindFetchCommitted, KindSeek:
		return validateGroup(op)
	case KindTimeLookup:
		return validateLookup(op)
	default:
		return fmt.Errorf("unknown kind %q", op.Kind)
	}
}

func validateName(what, name string) error {
	if name == "" || len(name) > topicBytesMax {
		return fmt.Errorf("%s name %q: want 1 to %d bytes", what, name, topicBytesMax)
	}
	return nil
}

func validateValue(value string) error {
	if value == "" || len(value) > valueBytesMax {
		return fmt.Errorf("value of %d bytes: want 1 to %d", len(value), valueBytesMax)
	}
	return nil
}

func validateProduce(op *Op) error {
	p := op.Produce
	if p == nil {
		return errors.New("produce op without a produce payload")
	}
	if err := validateValue(p.Value); err != nil {
		return err
	}
	if p.Acks != AcksNone && p.Acks != AcksLeader && p.Acks != AcksAll {
		return fmt.Errorf("acks %d: want 0, 1 or -1", p.Acks)
	}
	if p.Acks == AcksNone && p.Durable {
		return errors.New("an acks=0 produce cannot promise durability")
	}
	if p.ProducerID < 0 || p.Seq < 0 {
		return fmt.Errorf("producer id %d and seq %d must not be negative", p.ProducerID, p.Seq)
	}
	if op.Outcome == OutcomeOK && p.Acks != AcksNone && p.Offset < 0 {
		return fmt.Errorf("acknowledged produce with offset %d", p.Offset)
	}
	if s := p.Sequence; s != nil {
		if !p.Idempotent {
			return errors.New("a sequence number on a produce that is not idempotent")
		}
		if s.ProducerID < 0 || s.Epoch < 0 || s.Sequence < 0 {
			return fmt.Errorf("kafka producer id %d, epoch %d and sequence %d must not be negative", s.ProducerID, s.Epoch, s.Sequence)
		}
	}
	if p.BatchBytes < 0 || p.BatchRecords < 0 || (p.BatchBytes > 0) != (p.BatchRecords > 0) {
		return fmt.Errorf("batch of %d bytes and %d records: want both positive or both 0", p.BatchBytes, p.BatchRecords)
	}
	if e := p.ErrorLeaderEpoch; e != nil && (*e < 0 || p.Error == "") {
		return fmt.Errorf("error leader epoch %d: want one at least 0, with an error", *e)
	}
	return nil
}

func validatePoll(op *Op) error {
	p := op.Poll
	if p == nil {
		return errors.New("poll op without a poll payload")
	}
	if p.Group != "" {
		if err := validateName("group", p.Group); err != nil {
			return err
		}
	}
	if p.FetchOffset < 0 {
		return fmt.Errorf("negative fetch offset %d", p.FetchOffset)
	}
	if p.OutOfRange && !p.Reset {
		return errors.New("an out-of-range poll that is not a reset")
	}
	switch p.Isolation {
	case "", IsolationReadUncommitted, IsolationReadCommitted:
	default:
		return fmt.Errorf("unknown isolation %q", p.Isolation)
	}
	if op.Outcome == OutcomeOK && p.Error != "" {
		return fmt.Errorf("ok poll with error %s", p.Error)
	}
	if op.Outcome != OutcomeOK && len(p.Records) > 0 {
		return fmt.Errorf("%s poll returned %d records; only an ok poll returns records", op.Outcome, len(p.Records))
	}
	if len(p.Records) > pollRecordsMax {
		return fmt.Errorf("%d records in one poll, at most %d", len(p.Records), pollRecordsMax)
	}
	for j, r := range p.Records {
		if r.Offset < 0 || r.LeaderEpoch < 0 {
			return fmt.Errorf("record %d: negative offset %d or leader epoch %d", j, r.Offset, r.LeaderEpoch)
		}
		if err := validateValue(r.Value); err != nil {
			return fmt.Errorf("record %d: %w", j, err)
		}
	}
	return nil
}

func validateGroup(op *Op) error {
	g := op.Group
	if g == nil {
		return fmt.Errorf("%s op without a group payload", op.Kind)
	}
	if g.Group != "" || op.Kind != KindSeek {
		if err := validateName("group", g.Group); err != nil {
			return err
		}
	}
	offsetMin := int64(0)
	if op.Kind == KindFetchCommitted {
		offsetMin = -1 // Nothing committed yet.
	}
	if g.Offset < offsetMin {
		return fmt.Errorf("%s offset %d below %d", op.Kind, g.Offset, offsetMin)
	}
	return validateMember(op)
}

// validateMember checks a commit's membership: a member id, a generation
// a coordinator hands out, and a SyncGroup answered before the commit.
func validateMember(op *Op) error {
	m := op.Group.Member
	switch {
	case m == nil:
		return nil
	case op.Kind != KindCommit:
		return fmt.Errorf("%s op with a group member", op.Kind)
	case m.ID == "" || len(m.ID) > memberIDBytesMax:
		return fmt.Errorf("member id %q: want 1 to %d bytes", m.ID, memberIDBytesMax)
	case m.Generation < 0:
		return fmt.Errorf("member %s generation %d: want >= 0", m.ID, m.Generation)
	case m.SyncCall < 0 || m.SyncReturn < m.SyncCall || m.SyncReturn > op.Call:
		return fmt.Errorf("member %s sync call %d and return %d: want 0 <= sync call <= sync return <= commit call %d",
			m.ID, m.SyncCall, m.SyncReturn, op.Call)
	}
	return nil
}

func validateLookup(op *Op) error {
	l := op.Lookup
	if l == nil {
		return errors.New("time-lookup op without a lookup payload")
	}
	if l.Target < 0 {
		return fmt.Errorf("negative target time %d", l.Target)
	}
	if op.Outcome == OutcomeOK && (l.Offset < -1 || (l.Offset == -1) != (l.Timestamp == -1) || l.Timestamp < -1) {
		return fmt.Errorf("answer offset %d and timestamp %d: want both -1 or a record's", l.Offset, l.Timestamp)
	}
	return nil
}

func validateGroups(groups []GroupPromise) error {
	seen := make(map[string]bool, len(groups))
	for i, g := range groups {
		if err := validateName("group", g.Group); err != nil {
			return fmt.Errorf("group #%d: %w", i, err)
		}
		if g.Delivery != DeliveryAtMostOnce && g.Delivery != DeliveryAtLeastOnce {
			return fmt.Errorf("group %q: unknown delivery promise %q", g.Group, g.Delivery)
		}
		if seen[g.Group] {
			return fmt.Errorf("group %q listed twice", g.Group)
		}
		seen[g.Group] = true
	}
	return nil
}

func validateEnds(ends []End) error {
	seen := make(map[TopicPartition]bool, len(ends))
	for i, e := range ends {
		if err := validateName("topic", e.Topic); err != nil {
			return fmt.Errorf("end #%d: %w", i, err)
		}
		tp := TopicPartition{Topic: e.Topic, Partition: e.Partition}
		switch {
		case e.Offset == -1 && e.Error != "" && e.Start == 0 && e.Partition >= 0:
			// The broker would not tell the partition's offsets.
		case e.Partition < 0 || e.Offset < 0 || e.Start < 0 || e.Start > e.Offset:
			return fmt.Errorf("end #%d: %s from %d to %d: want 0 <= start <= offset", i, tp, e.Start, e.Offset)
		}
		if seen[tp] {
			return fmt.Errorf("end #%d: %s listed twice", i, tp)
		}
		seen[tp] = true
	}
	return nil
}

// producerKey names one producer's sends of one value in one partition.
type producerKey struct {
	tp    TopicPartition
	value string
}

// validateProducers enforces the value contract that the delivery checks
// rely on: within a partition a value belongs to one producer, an idempotent
// producer sends it once, and a producer is idempotent or not throughout.
func validateProducers(ops []Op) error {
	owner := make(map[producerKey]int)
	idempotent := make(map[int64]int)
	sends := make(map[[2]int64]int) // (producer id, seq) of idempotent sends
	for i := range ops {
		op := &ops[i]
		if op.Kind != KindProduce {
			continue
		}
		p := op.Produce
		if first, ok := idempotent[p.ProducerID]; ok && ops[first].Produce.Idempotent != p.Idempotent {
			return fmt.Errorf("op #%d: producer %d is idempotent in op #%d but not here, or the reverse", i, p.ProducerID, first)
		}
		idempotent[p.ProducerID] = i
		if p.Idempotent {
			send := [2]int64{p.ProducerID, p.Seq}
			if first, ok := sends[send]; ok {
				return fmt.Errorf("op #%d: idempotent producer %d reuses seq %d of op #%d", i, p.ProducerID, p.Seq, first)
			}
			sends[send] = i
		}
		key := producerKey{tp: op.TopicPartition(), value: p.Value}
		first, seen := owner[key]
		if !seen {
			owner[key] = i
			continue
		}
		if ops[first].Produce.ProducerID != p.ProducerID {
			return fmt.Errorf("op #%d: value %q in %s was already produced by producer %d in op #%d", i, p.Value, key.tp, ops[first].Produce.ProducerID, first)
		}
		if p.Idempotent {
			return fmt.Errorf("op #%d: idempotent producer %d sends value %q in %s twice (first in op #%d)", i, p.ProducerID, p.Value, key.tp, first)
		}
	}
	return nil
}
