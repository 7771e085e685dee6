package checker

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// effectiveOutcome is the outcome the checks believe. An acks=0 producer
// learns nothing, so its produces are indefinite whatever it recorded. A
// write acknowledged without the configuration's promise of durability
// (Produce.Durable unset: acks=1 under power loss in durable mode, say) is
// indefinite too: it may be lost and its offset given to another record,
// so it may or may not be in the log, and if it is, maybe elsewhere.
func effectiveOutcome(op *Op) Outcome {
	if op.Kind != KindProduce {
		return op.Outcome
	}
	if op.Produce.Acks == AcksNone || (op.Outcome == OutcomeOK && !op.Produce.Durable) {
		return OutcomeIndefinite
	}
	return op.Outcome
}

// checkLostWrites reports every durable acknowledged write that the final
// drain of its partition does not hold at its acknowledged offset. A
// partition without a final drain is reported by checkDrains instead: a
// write is only called lost when someone looked for it.
func checkLostWrites(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		if len(p.drain.polls) == 0 {
			continue
		}
		unavailable := p.unavailableFrom(ix.h)
		for _, i := range p.ops {
			op := &ix.h.Ops[i]
			if !acknowledged(op) || !op.Produce.Durable || op.Produce.Offset < p.keepFrom() {
				continue // below the log start, retention deleted it
			}
			if unavailable >= 0 && op.Produce.Offset >= unavailable {
				continue // the broker reported the damaged partition unreadable there
			}
			checked++
			if p.drain.holds(op.Produce.Offset, op.Produce.Value) {
				continue
			}
			anomalies = append(anomalies, lostWrite(ix.h, p, i))
		}
	}
	return anomalies, checked
}

func lostWrite(h *History, p *partitionIndex, i int) Anomaly {
	produce := h.Ops[i].Produce
	found := "nothing"
	if values := p.drain.valuesAt(produce.Offset); len(values) > 0 {
		found = fmt.Sprintf("%q", values)
	}
	return Anomaly{
		Kind: AnomalyLostWrite, Partition: p.tp, Ops: []int{i}, Offset: produce.Offset, Value: produce.Value,
		Explanation: fmt.Sprintf("%s wrote %q durably and was acknowledged at offset %d, but the final drain (%d polls, first op #%d) returned %s at that offset",
			describeOp(h, i), produce.Value, produce.Offset, len(p.drain.polls), p.drain.polls[0], found),
	}
}

// checkDrains reports partitions whose final drain did not reach the end
// offset observed after healing, and partitions holding durable
// acknowledged writes that were never drained at all.
func checkDrains(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	for _, p := range ix.partitions {
		d := &p.drain
		drained := len(d.polls) > 0
		if p.endError != "" && damagedPartition(ix.h, p.tp) {
			continue // reported unreadable after damage: see damage.go
		}
		switch {
		case drained && d.reached < p.end:
			anomalies = append(anomalies, drainAnomaly(p, d.polls, fmt.Sprintf(
				"the final drain (%d polls, first op #%d) reached offset %d, short of the end offset %d observed after healing",
				len(d.polls), d.polls[0], d.reached, p.end)))
		case !drained && p.end > 0:
			anomalies = append(anomalies, drainAnomaly(p, nil, fmt.Sprintf(
				"the partition's end offset after healing is %d, but no final poll read it", p.end)))
		case !drained && p.end < 0:
			if durable := durableAcks(ix.h, p); durable > 0 {
				anomalies = append(anomalies, drainAnomaly(p, nil, fmt.Sprintf(
					"the partition holds %d durable acknowledged writes but was never drained, so none of them can be confirmed", durable)))
			}
		}
	}
	return anomalies, len(ix.partitions)
}

func drainAnomaly(p *partitionIndex, polls []int, explanation string) Anomaly {
	return Anomaly{Kind: AnomalyIncompleteDrain, Partition: p.tp, Ops: slices.Clone(polls), Offset: p.drain.reached, Explanation: explanation}
}

func durableAcks(h *History, p *partitionIndex) int {
	count := 0
	for _, i := range p.ops {
		if op := &h.Ops[i]; acknowledged(op) && op.Produce.Durable {
			count++
		}
	}
	return count
}

// checkInconsistentOffsets reports every offset observed (acknowledged or
// read) with more than one value, naming the first witness of each value.
func checkInconsistentOffsets(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		obs := p.observations
		for start := 0; start < len(obs); {
			end := start + 1
			for end < len(obs) && obs[end].offset == obs[start].offset {
				end++
			}
			checked++
			if obs[start].value != obs[end-1].value {
				anomalies = append(anomalies, inconsistentOffset(ix.h, p.tp, obs[start:end]))
			}
			start = end
		}
	}
	return anomalies, checked
}

// inconsistentOffset explains one offset's observations, which are sorted by
// value and hold at least two values.
func inconsistentOffset(h *History, tp TopicPartition, obs []observation) Anomaly {
	var ops []int
	var parts []string
	for j, o := range obs {
		if j > 0 && obs[j-1].value == o.value {
			continue
		}
		how := "read by"
		if h.Ops[o.op].Kind == KindProduce {
			how = "acknowledged to"
		}
		ops = append(ops, o.op)
		parts = append(parts, fmt.Sprintf("%q (%s %s)", o.value, how, describeOp(h, o.op)))
	}
	return Anomaly{
		Kind: AnomalyInconsistentOffset, Partition: tp, Ops: ops, Offset: obs[0].offset,
		Explanation: fmt.Sprintf("offset %d was observed with %d values: %s", obs[0].offset, len(ops), strings.Join(parts, ", ")),
	}
}

// checkDuplicates reports every value sent by an idempotent producer that
// was observed at more than one offset. Non-idempotent producers deliver at
// least once, so their duplicates are legitimate.
func checkDuplicates(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		obs := p.byValue
		for start := 0; start < len(obs); {
			end := start + 1
			for end < len(obs) && obs[end].value == obs[start].value {
				end++
			}
			group := obs[start:end]
			start = end
			producers := p.producers[group[0].value]
			if len(producers) == 0 || !ix.h.Ops[producers[0]].Produce.Idempotent {
				continue
			}
			checked++
			if group[0].offset != group[len(group)-1].offset {
				anomalies = append(anomalies, duplicate(ix.h, p.tp, producers[0], group))
			}
		}
	}
	return anomalies, checked
}

func duplicate(h *History, tp TopicPartition, producer int, group []observation) Anomaly {
	ops := []int{producer}
	var parts []string
	for j, o := range group {
		if j > 0 && group[j-1].offset == o.offset {
			continue
		}
		ops = append(ops, o.op)
		parts = append(parts, fmt.Sprintf("%d (%s)", o.offset, describeOp(h, o.op)))
	}
	return Anomaly{
		Kind: AnomalyDuplicate, Partition: tp, Ops: ops, Offset: group[0].offset, Value: group[0].value,
		Explanation: fmt.Sprintf("%q, sent once by idempotent producer %d in %s, appears at offsets %s",
			group[0].value, h.Ops[producer].Produce.ProducerID, describeOp(h, producer), strings.Join(parts, ", ")),
	}
}

// checkUnexpectedReads reports values read by a poll that no operation
// produced in that partition (phantom reads), and values read whose every
// produce failed definitely. Each value is reported once, at its first read.
func checkUnexpectedReads(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		judged := false // whether the current value has been judged
		obs := p.byValue
		for j, o := range obs {
			if j > 0 && obs[j-1].value != o.value {
				judged = false
			}
			if judged || o.read < 0 {
				continue
			}
			judged = true
			checked++
			if a, bad := unexpectedRead(ix.h, p, o); bad {
				anomalies = append(anomalies, a)
			}
		}
	}
	return anomalies, checked
}

// unexpectedRead judges the first read o of a value.
func unexpectedRead(h *History, p *partitionIndex, o observation) (Anomaly, bool) {
	producers := p.producers[o.value]
	a := Anomaly{Partition: p.tp, Ops: []int{o.read}, Offset: o.offset, Value: o.value}
	if len(producers) == 0 {
		a.Kind = AnomalyPhantomRead
		a.Explanation = fmt.Sprintf("%s read %q at offset %d, but no operation produced that value in %s",
			describeOp(h, o.read), o.value, o.offset, p.tp)
		return a, true
	}
	for _, i := range producers {
		if effectiveOutcome(&h.Ops[i]) != OutcomeFail {
			return Anomaly{}, false
		}
	}
	a.Kind = AnomalyFailedWriteRead
	a.Ops = append(a.Ops, producers...)
	a.Explanation = fmt.Sprintf("%s read %q at offset %d, but its only produce, %s, failed definitely",
		describeOp(h, o.read), o.value, o.offset, describeOp(h, producers[0]))
	if len(producers) > 1 {
		a.Explanation = fmt.Sprintf("%s read %q at offset %d, but all %d of its produces (first %s) failed definitely",
			describeOp(h, o.read), o.value, o.offset, len(producers), describeOp(h, producers[0]))
	}
	return a, true
}

// checkProducerOrder reports, for each idempotent producer and partition,
// every acknowledged send whose offset is not above the offset of an
// earlier send (by Seq) of the same producer.
func checkProducerOrder(ix *historyIndex) ([]Anomaly, int) {
	var anomalies []Anomaly
	checked := 0
	for _, p := range ix.partitions {
		var sends []int
		for _, i := range p.ops {
			if op := &ix.h.Ops[i]; acknowledged(op) && op.Produce.Idempotent {
				sends = append(sends, i)
			}
		}
		slices.SortFunc(sends, func(a, b int) int {
			pa, pb := ix.h.Ops[a].Produce, ix.h.Ops[b].Produce
			if c := cmp.Compare(pa.ProducerID, pb.ProducerID); c != 0 {
				return c
			}
			return cmp.Compare(pa.Seq, pb.Seq)
		})
		checked += len(sends)
		highest := -1 // the earlier send with the highest offset so far
		for _, i := range sends {
			produce := ix.h.Ops[i].Produce
			if highest >= 0 && ix.h.Ops[highest].Produce.ProducerID != produce.ProducerID {
				highest = -1
			}
			if highest >= 0 && produce.Offset <= ix.h.Ops[highest].Produce.Offset {
				anomalies = append(anomalies, nonmonotonicSend(ix.h, p.tp, highest, i))
				continue
			}
			highest = i
		}
	}
	return anomalies, checked
}

func nonmonotonicSend(h *History, tp TopicPartition, earlier, later int) Anomaly {
	pe, pl := h.Ops[earlier].Produce, h.Ops[later].Produce
	return Anomaly{
		Kind: AnomalyNonmonotonicSend, Partition: tp, Ops: []int{later, earlier}, Offset: pl.Offset, Value: pl.Value,
		Explanation: fmt.Sprintf("idempotent producer %d sent %q (seq %d, %s) after %q (seq %d, %s), yet it was acknowledged at offset %d, not above %d",
			pl.ProducerID, pl.Value, pl.Seq, describeOp(h, later), pe.Value, pe.Seq, describeOp(h, earlier), pl.Offset, pe.Offset),
	}
}
