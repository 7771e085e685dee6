package checker

import (
	"fmt"
	"slices"
)

// Damage at rest.
//
// A single broker cannot repair stored data that the medium damaged: the
// bytes of a synced batch changed (corruption) or became unreadable (a
// latent sector error). What it must do is never serve damaged data and
// report the damage: answer KAFKA_STORAGE_ERROR rather than a wrong record
// or a silent gap. The checker holds it to exactly that, with the
// simulator's own record of what it damaged (History.Damage), never the
// broker's account:
//   - A record the simulator damaged may be lost, and its offset given to
//     another record (a damaged last batch looks like a torn write to
//     recovery, which cuts it). So an acknowledged write inside a damaged
//     batch is judged like a write acknowledged without a durability
//     promise (excuseDamage). Every record a poll returns is still judged:
//     a damaged record served with changed content is a value nobody
//     produced, or another value at its offset.
//   - A partition the simulator damaged may become unreadable from the
//     damage on, or as a whole (a corrupt partition goes offline on a
//     single node), provided the broker said so: the drain then records the
//     error it kept getting (End.Error), and what the drain could not read
//     is not called lost (unavailable).
//   - The broker reporting a partition unreadable without any damage of the
//     simulator's is an anomaly (AnomalyUnfoundedStorageError), and so is a
//     fetched batch that failed the client's own validation
//     (AnomalyCorruptRead): the broker checks every batch it serves. A
//     drain that read through a damaged record's offset and got neither
//     the record nor an error saw the damage skipped silently
//     (AnomalyUnreportedDamage): this log is dense, so a record missing
//     inside what a fetch returned is a hole.

// Damage is one lasting fault the simulator made to the stored data of a
// partition: the batch it hit, by the offsets of its first and last records
// as the batch's own header gave them before the damage, and when.
type Damage struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// FirstOffset and LastOffset are the offsets of the first and last
	// records of the damaged batch.
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
	// Kind is DamageCorruption or DamageLatent.
	Kind string `json:"kind"`
	// At is when the damage was made, in virtual nanoseconds.
	At int64 `json:"at"`
}

// The kinds of Damage.
const (
	// DamageCorruption: bytes of the batch changed at rest.
	DamageCorruption = "corruption"
	// DamageLatent: reads of some of the batch's bytes fail (a latent
	// sector error).
	DamageLatent = "latent"
)

// ErrorCorruptMessage is the Poll.Error of a fetch whose data the client
// found invalid (a CRC mismatch, a malformed batch): Kafka's name for it.
const ErrorCorruptMessage = "CORRUPT_MESSAGE"

// ErrorStorage is Kafka's KAFKA_STORAGE_ERROR, what a broker answers for a
// partition whose stored data it cannot read or trust.
const ErrorStorage = "KAFKA_STORAGE_ERROR"

func validateDamage(damage []Damage) error {
	for i, d := range damage {
		if err := validateName("topic", d.Topic); err != nil {
			return fmt.Errorf("damage #%d: %w", i, err)
		}
		if d.Partition < 0 || d.FirstOffset < 0 || d.LastOffset < d.FirstOffset || d.At < 0 {
			return fmt.Errorf("damage #%d: %s-%d [%d, %d] at %d: want a partition, 0 <= first <= last and a time",
				i, d.Topic, d.Partition, d.FirstOffset, d.LastOffset, d.At)
		}
		if d.Kind != DamageCorruption && d.Kind != DamageLatent {
			return fmt.Errorf("damage #%d: unknown kind %q", i, d.Kind)
		}
	}
	return nil
}

// damaged reports whether the acknowledged produce op wrote inside a batch
// the simulator damaged after the produce was called.
func damaged(h *History, op *Op) bool {
	if op.Kind != KindProduce || op.Outcome != OutcomeOK {
		return false
	}
	for _, d := range h.Damage {
		if d.Topic == op.Topic && d.Partition == op.Partition && op.Call <= d.At &&
			d.FirstOffset <= op.Produce.Offset && op.Produce.Offset <= d.LastOffset {
			return true
		}
	}
	return false
}

// excuseDamage returns h with every durable acknowledged write that the
// simulator damaged judged as acknowledged without a durability promise,
// or h itself when there is nothing to excuse. h is not modified.
func excuseDamage(h *History) *History {
	if len(h.Damage) == 0 {
		return h
	}
	excused := *h
	excused.Ops = slices.Clone(h.Ops)
	for i := range excused.Ops {
		op := &excused.Ops[i]
		if op.Kind == KindProduce && op.Produce.Durable && damaged(h, op) {
			produce := *op.Produce
			produce.Durable = false
			op.Produce = &produce
		}
	}
	return &excused
}

// damagedPartition reports whether the simulator damaged any of tp's data.
func damagedPartition(h *History, tp TopicPartition) bool {
	for _, d := range h.Damage {
		if d.Topic == tp.Topic && d.Partition == tp.Partition {
			return true
		}
	}
	return false
}

// unavailableFrom is the offset from which the final drain of p could not
// read because the broker reported the stored data unreadable, for a
// partition the simulator damaged; -1 when every offset must be readable.
func (p *partitionIndex) unavailableFrom(h *History) int64 {
	if p.endError == "" || !damagedPartition(h, p.tp) {
		return -1
	}
	return max(p.drain.reached, 0)
}

// checkStorageErrors reports partitions the broker called unreadable
// without damage of the simulator's, and polls that returned data failing
// the client's own validation.
func checkStorageErrors(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		checked++
		if p.endError != "" && !damagedPartition(ix.h, p.tp) {
			anomalies = append(anomalies, Anomaly{
				Kind: AnomalyUnfoundedStorageError, Partition: p.tp, Ops: slices.Clone(p.drain.polls), Offset: max(p.drain.reached, 0),
				Explanation: fmt.Sprintf("after healing the broker kept answering %s for the partition (the drain reached offset %d), but the simulator damaged none of its data",
					p.endError, p.drain.reached),
			})
		}
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			// Below the legal log start retention may have deleted the
			// damaged batch with its segment (sim seed 901423 with
			// corruption, crash, powerloss, disk-errors and retention).
			if op.Kind == KindProduce && damaged(ix.h, op) && op.Produce.Offset >= p.keepFrom() &&
				p.drain.absent(interval{from: op.Produce.Offset, to: op.Produce.Offset + 1}) {
				anomalies = append(anomalies, Anomaly{
					Kind: AnomalyUnreportedDamage, Partition: p.tp, Ops: []int{i}, Offset: op.Produce.Offset, Value: op.Produce.Value,
					Explanation: fmt.Sprintf("%s was acknowledged at offset %d, in a batch the simulator damaged; the final drain read through that offset and got neither the record nor an error: damaged data must be reported, never skipped",
						describeOp(ix.h, i), op.Produce.Offset),
				})
			}
			if op.Kind != KindPoll || op.Poll.Error != ErrorCorruptMessage {
				continue
			}
			anomalies = append(anomalies, Anomaly{
				Kind: AnomalyCorruptRead, Partition: p.tp, Ops: []int{i}, Offset: op.Poll.FetchOffset,
				Explanation: fmt.Sprintf("%s fetched from offset %d and got a batch that failed the client's validation (%s): the broker served data it should have checked",
					describeOp(ix.h, i), op.Poll.FetchOffset, ErrorCorruptMessage),
			})
		}
	}
	return anomalies, checked
}
