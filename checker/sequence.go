package checker

import (
	"cmp"
	"fmt"
	"slices"
)

// sequenceKey names one Kafka producer identity's record in one partition.
type sequenceKey struct {
	producerID int64
	epoch      int16
	sequence   int32
}

// checkSequenceGaps reports acknowledged sends whose predecessor (same
// Kafka producer id, epoch and partition, sequence one less) is missing
// from the log.
//
// A broker appends a producer's records of one partition and epoch in
// sequence order and refuses a gap (OUT_OF_ORDER_SEQUENCE_NUMBER), so an
// appended record's predecessor was appended first. The one exception is a
// producer the broker holds no state for: Kafka then accepts any first
// sequence, because the producer's earlier records may have left the log.
// The check therefore needs, besides the acknowledged send A and its
// missing predecessor P, an earlier record Q of the same identity that is
// provably in the log (acknowledged durably, at an offset retention had to
// keep): the broker rebuilds its producer state from the log, so it knew
// the producer when A arrived, and P, appended after Q, lies above Q and
// so above every offset retention could have deleted.
//
// P is missing when none of its operations was acknowledged and no poll
// read its value; only drained partitions are judged, so that "never read"
// means the final drain looked for it.
func checkSequenceGaps(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	settled := uncleanSettled(ix.h)
	for _, p := range ix.partitions {
		if len(p.drain.polls) == 0 {
			continue
		}
		sends := sequencedSends(ix.h, p)
		// lowestKept maps an identity (sequence 0) to the lowest sequence
		// of its records that are provably in the log.
		lowestKept := make(map[sequenceKey]int32)
		for key, ops := range sends { // order-independent: a minimum per identity
			for _, i := range ops {
				if op := &ix.h.Ops[i]; acknowledged(op) && op.Produce.Offset >= p.keepFrom() {
					id := sequenceKey{producerID: key.producerID, epoch: key.epoch}
					if low, ok := lowestKept[id]; !ok || key.sequence < low {
						lowestKept[id] = key.sequence
					}
				}
			}
		}
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			s := op.Produce
			if op.Kind != KindProduce || s.Sequence == nil || s.Sequence.Sequence == 0 || !acknowledged(op) {
				continue
			}
			checked++
			id := sequenceKey{producerID: s.Sequence.ProducerID, epoch: s.Sequence.Epoch}
			low, known := lowestKept[id]
			if !known || low >= s.Sequence.Sequence-1 {
				continue // the broker may have known nothing of this producer
			}
			predecessor := sequenceKey{producerID: id.producerID, epoch: id.epoch, sequence: s.Sequence.Sequence - 1}
			preds := sends[predecessor]
			if len(preds) == 0 {
				continue // the client never reported the predecessor's fate
			}
			if !present(ix.h, p, preds) && !lossExcused(ix.h, p, preds, settled) {
				anomalies = append(anomalies, sequenceGap(ix.h, p, i, preds[0]))
			}
		}
	}
	return anomalies, checked
}

// lossExcused reports whether the loss of one of ops, writes of p, is
// explained by what the simulator or the configuration allows to take a
// record from the middle of a producer's run: damage at rest to its batch
// (sim seeds 593, 500067 and 1200253 of the first swarm sweeps: the
// simulator damaged the predecessor's batch, which excuseDamage then no
// longer holds acknowledged, while its successor's batch stayed
// acknowledged), or an unclean election before the partition settled
// (unclean.go). Power loss and dropped pages cannot: they take a log's
// suffix, the successor with its predecessor.
func lossExcused(h *History, p *partitionIndex, ops []int, settled map[TopicPartition]int64) bool {
	for _, i := range ops {
		op := &h.Ops[i]
		if damaged(h, op) {
			return true
		}
		if at, ok := settled[p.tp]; ok && op.Call < at {
			return true
		}
	}
	return false
}

// sequencedSends maps each identity of a partition to the produce
// operations that report it, in history order.
func sequencedSends(h *History, p *partitionIndex) map[sequenceKey][]int {
	sends := make(map[sequenceKey][]int)
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind != KindProduce || op.Produce.Sequence == nil {
			continue
		}
		s := op.Produce.Sequence
		key := sequenceKey{producerID: s.ProducerID, epoch: s.Epoch, sequence: s.Sequence}
		sends[key] = append(sends[key], i)
	}
	return sends
}

// present reports whether some operation of ops was acknowledged or had its
// value read by a poll of p.
func present(h *History, p *partitionIndex, ops []int) bool {
	for _, i := range ops {
		op := &h.Ops[i]
		if acknowledged(op) {
			return true
		}
		value := op.Produce.Value
		first, _ := slices.BinarySearchFunc(p.byValue, value, func(o observation, v string) int { return cmp.Compare(o.value, v) })
		for j := first; j < len(p.byValue) && p.byValue[j].value == value; j++ {
			if p.byValue[j].read >= 0 {
				return true
			}
		}
	}
	return false
}

func sequenceGap(h *History, p *partitionIndex, acked, pred int) Anomaly {
	s := h.Ops[acked].Produce
	return Anomaly{
		Kind: AnomalySequenceGap, Partition: p.tp, Ops: []int{acked, pred}, Offset: s.Offset, Value: s.Value,
		Explanation: fmt.Sprintf("%s sent %q as Kafka producer %d epoch %d sequence %d and was acknowledged at offset %d, but its predecessor (sequence %d, %q, %s, %s) is in no acknowledgement and no poll, although the log kept an earlier record of that producer",
			describeOp(h, acked), s.Value, s.Sequence.ProducerID, s.Sequence.Epoch, s.Sequence.Sequence, s.Offset,
			s.Sequence.Sequence-1, h.Ops[pred].Produce.Value, describeOp(h, pred), h.Ops[pred].Outcome),
	}
}
