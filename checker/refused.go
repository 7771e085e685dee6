package checker

import (
	"fmt"
	"slices"
	"strings"
)

// checkRefusedRetries reports every idempotent send that ended with
// OUT_OF_ORDER_SEQUENCE_NUMBER although a poll read its value: the value
// is in the log, so the attempt the broker refused was a retry of a batch
// it held. KIP-98's broker remembers each producer's last five batches per
// partition, as many as a producer keeps in flight, and answers such a
// retry with the original offset. A value read at some offset, whatever
// the offset, is in the log (values are unique per send); a send whose
// value no poll read proves nothing and is skipped.
//
// In a cluster (History.Replication set) Produce carries no leader epoch,
// so a deposed leader that has not yet heard of its successor answers a
// retry of a batch only the successor holds with
// OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka's does (sim seed 1701217: a
// partitioned leader refused six retries the new leader had appended).
// So there a refusal is judged only when the producer knew the epoch E in
// which the refusing broker led (Produce.ErrorLeaderEpoch) and the value
// was read in a batch appended in an epoch at most E: the leader of epoch
// E held every such batch that was committed (a clean election keeps
// what was committed, and an unclean one is excused beforehand), and
// remembers the producer's last five batches of it too.
func checkRefusedRetries(ix *historyIndex) ([]Anomaly, int) {
	cluster := ix.h.Replication != nil
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			if op.Kind != KindProduce || !op.Produce.Idempotent || op.Outcome == OutcomeOK ||
				op.Produce.Error != ErrorOutOfOrderSequence {
				continue
			}
			if cluster && op.Produce.ErrorLeaderEpoch == nil {
				continue
			}
			checked++
			o, ok := p.readObservation(op.Produce.Value)
			if ok && cluster && readEpoch(ix.h, o) > *op.Produce.ErrorLeaderEpoch {
				continue // appended after the refusing broker's epoch
			}
			if ok {
				anomalies = append(anomalies, refusedRetry(ix.h, p.tp, i, o))
			}
		}
	}
	return anomalies, checked
}

// readObservation returns an observation of value that a poll read.
func (p *partitionIndex) readObservation(value string) (observation, bool) {
	at, _ := slices.BinarySearchFunc(p.byValue, value, func(o observation, v string) int {
		return strings.Compare(o.value, v)
	})
	for ; at < len(p.byValue) && p.byValue[at].value == value; at++ {
		if p.byValue[at].read >= 0 {
			return p.byValue[at], true
		}
	}
	return observation{}, false
}

// readEpoch is the leader epoch of the batch in which observation o's poll
// read its value.
func readEpoch(h *History, o observation) int32 {
	for _, r := range h.Ops[o.read].Poll.Records {
		if r.Offset == o.offset && r.Value == o.value {
			return r.LeaderEpoch
		}
	}
	panic(fmt.Sprintf("checker: op #%d did not read %q at offset %d", o.read, o.value, o.offset))
}

func refusedRetry(h *History, tp TopicPartition, i int, o observation) Anomaly {
	produce := h.Ops[i].Produce
	return Anomaly{
		Kind: AnomalyRefusedRetry, Partition: tp, Ops: []int{i, o.read}, Offset: o.offset, Value: produce.Value,
		Explanation: fmt.Sprintf("%s sent %q, whose last attempt the broker refused with %s, but %s read it at offset %d: the broker refused a retry of a batch it held instead of answering its original offset",
			describeOp(h, i), produce.Value, produce.Error, describeOp(h, o.read), o.offset),
	}
}
