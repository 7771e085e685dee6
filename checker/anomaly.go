package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// AnomalyKind names a class of anomaly. The classes follow the Jepsen Kafka
// workload's; docs/checker.md defines each precisely.
type AnomalyKind string

// The anomaly kinds, in the order reports list them.
const (
	// AnomalyNonlinearizable: a partition's operations admit no order that
	// is consistent with their real-time order and with one append-only log.
	AnomalyNonlinearizable AnomalyKind = "nonlinearizable"
	// AnomalyLostWrite: a durable acknowledged write is missing from the
	// final drain at its acknowledged offset.
	AnomalyLostWrite AnomalyKind = "lost-write"
	// AnomalyInconsistentOffset: one offset of a partition was observed with
	// two different values.
	AnomalyInconsistentOffset AnomalyKind = "inconsistent-offset"
	// AnomalyDuplicate: a value sent by an idempotent producer was observed
	// at two offsets.
	AnomalyDuplicate AnomalyKind = "duplicate"
	// AnomalyPhantomRead: a poll returned a value that no operation produced
	// in that partition.
	AnomalyPhantomRead AnomalyKind = "phantom-read"
	// AnomalyFailedWriteRead: a poll returned a value whose every produce
	// failed definitely.
	AnomalyFailedWriteRead AnomalyKind = "failed-write-read"
	// AnomalyNonmonotonicSend: an idempotent producer's later send got a
	// lower offset than an earlier send to the same partition.
	AnomalyNonmonotonicSend AnomalyKind = "nonmonotonic-send"
	// AnomalySequenceGap: an idempotent producer's send was acknowledged
	// while its predecessor (same Kafka producer id, epoch and partition,
	// sequence one less) is missing from a log that provably kept the
	// producer's earlier records: the broker accepted a sequence gap.
	AnomalySequenceGap AnomalyKind = "sequence-gap"
	// AnomalyRefusedRetry: an idempotent producer's send ended with
	// OUT_OF_ORDER_SEQUENCE_NUMBER although a poll read its value in the
	// log: the broker refused a retry of a batch it held, which it must
	// answer with the original offset (KIP-98 remembers a producer's last
	// five batches, as many as may be in flight).
	AnomalyRefusedRetry AnomalyKind = "refused-retry"
	// AnomalyNonmonotonicPoll: a consumer read an offset at or below one it
	// had already read, without a seek or reset in between.
	AnomalyNonmonotonicPoll AnomalyKind = "nonmonotonic-poll"
	// AnomalyPollSkip: a consumer's reads skipped offsets that the final
	// drain shows exist (or cannot show are absent).
	AnomalyPollSkip AnomalyKind = "poll-skip"
	// AnomalyBackwardCommit: a group's committed offset moved backwards
	// without a seek.
	AnomalyBackwardCommit AnomalyKind = "backward-commit"
	// AnomalyLostCommit: a read of a group's committed offset returned a
	// value that no commit explains: older than an acknowledged commit
	// that returned before the read began, or never committed at all.
	AnomalyLostCommit AnomalyKind = "lost-commit"
	// AnomalyReprocessed: a group that promised at-most-once processed one
	// offset twice.
	AnomalyReprocessed AnomalyKind = "reprocessed"
	// AnomalyUnprocessed: a group that promised at-least-once committed past
	// an offset of the log that none of its members processed.
	AnomalyUnprocessed AnomalyKind = "unprocessed"
	// AnomalyPrematureDeletion: the final drain starts above the legal log
	// start: retention deleted records the configuration made it keep.
	AnomalyPrematureDeletion AnomalyKind = "premature-deletion"
	// AnomalyIncompleteDrain: the final drain of a partition did not reach
	// the end offset observed after healing, or never happened although the
	// partition holds durable acknowledged writes.
	AnomalyIncompleteDrain AnomalyKind = "incomplete-drain"
	// AnomalyWrongTimeLookup: a lookup by time (ListOffsets, KIP-79) did
	// not answer the first record whose timestamp is at or after the
	// target, with that record's timestamp, as far as the clients' records
	// show.
	AnomalyWrongTimeLookup AnomalyKind = "wrong-time-lookup"
	// AnomalyUnfoundedStorageError: after healing the broker kept calling
	// a partition unreadable (KAFKA_STORAGE_ERROR) although the simulator
	// damaged none of its stored data.
	AnomalyUnfoundedStorageError AnomalyKind = "unfounded-storage-error"
	// AnomalyCorruptRead: a poll got a batch that failed the client's own
	// validation (CRC, framing): the broker served data it must check.
	AnomalyCorruptRead AnomalyKind = "corrupt-read"
	// AnomalyUnreportedDamage: the final drain read through the offset of
	// a record the simulator damaged and got neither the record nor an
	// error: damaged data was skipped silently.
	AnomalyUnreportedDamage AnomalyKind = "unreported-damage"
)

// anomalyKinds lists every kind in report order.
var anomalyKinds = []AnomalyKind{
	AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset,
	AnomalyDuplicate, AnomalyPhantomRead, AnomalyFailedWriteRead,
	AnomalyNonmonotonicSend, AnomalySequenceGap, AnomalyRefusedRetry, AnomalyNonmonotonicPoll, AnomalyPollSkip,
	AnomalyBackwardCommit, AnomalyLostCommit, AnomalyStaleGenerationCommit, AnomalyReprocessed, AnomalyUnprocessed, AnomalyPrematureDeletion, AnomalyIncompleteDrain,
	AnomalyWrongTimeLookup, AnomalyUnfoundedStorageError, AnomalyCorruptRead, AnomalyUnreportedDamage,
}

// rank is a kind's position in report order.
func (k AnomalyKind) rank() int {
	rank := slices.Index(anomalyKinds, k)
	if rank < 0 {
		panic(fmt.Sprintf("checker: unknown anomaly kind %q", k))
	}
	return rank
}

// Anomaly is one violation of a property, with the operations that witness
// it.
type Anomaly struct {
	Kind      AnomalyKind    `json:"kind"`
	Partition TopicPartition `json:"partition"`
	// Ops are the indexes (in History.Ops) of the witnessing operations,
	// the most telling first.
	Ops []int `json:"ops"`
	// Offset is the offset concerned, or -1.
	Offset int64 `json:"offset"`
	// Value is the value concerned, or "".
	Value string `json:"value,omitempty"`
	// Explanation says what happened in a full sentence that names the
	// operations by index, client, offset and value.
	Explanation string `json:"explanation"`
}

// String renders a on one line.
func (a Anomaly) String() string {
	return fmt.Sprintf("%s %s: %s", a.Kind, a.Partition, a.Explanation)
}

// compareAnomalies orders anomalies by kind, partition, offset, witnesses
// and explanation, so that reports are deterministic.
func compareAnomalies(a, b Anomaly) int {
	if c := cmp.Compare(a.Kind.rank(), b.Kind.rank()); c != 0 {
		return c
	}
	if a.Partition != b.Partition {
		if a.Partition.less(b.Partition) {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(a.Offset, b.Offset); c != 0 {
		return c
	}
	if c := slices.Compare(a.Ops, b.Ops); c != 0 {
		return c
	}
	return strings.Compare(a.Explanation, b.Explanation)
}

// sortAnomalies sorts in place into report order and returns anomalies.
func sortAnomalies(anomalies []Anomaly) []Anomaly {
	slices.SortFunc(anomalies, compareAnomalies)
	return anomalies
}

// describeOp names an operation in explanations: `op #12 (client 3)`.
func describeOp(h *History, index int) string {
	return fmt.Sprintf("op #%d (client %d)", index, h.Ops[index].Client)
}
