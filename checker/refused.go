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
func checkRefusedRetries(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			if op.Kind != KindProduce || !op.Produce.Idempotent || op.Outcome == OutcomeOK ||
				op.Produce.Error != ErrorOutOfOrderSequence {
				continue
			}
			checked++
			if o, ok := p.readObservation(op.Produce.Value); ok {
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

func refusedRetry(h *History, tp TopicPartition, i int, o observation) Anomaly {
	produce := h.Ops[i].Produce
	return Anomaly{
		Kind: AnomalyRefusedRetry, Partition: tp, Ops: []int{i, o.read}, Offset: o.offset, Value: produce.Value,
		Explanation: fmt.Sprintf("%s sent %q, whose last attempt the broker refused with %s, but %s read it at offset %d: the broker refused a retry of a batch it held instead of answering its original offset",
			describeOp(h, i), produce.Value, produce.Error, describeOp(h, o.read), o.offset),
	}
}
