package checker

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// This file decides linearizability of one partition directly, without a
// search (MethodOffsets). It decides exactly what porcupine decides with
// logModel (docs/checker.md proves it, and the property tests compare the
// two on random histories), in O(n log n) time for n operations.
//
// The model forces almost everything. Every observed offset is written
// exactly once, in offset order, and only by a produce whose value was
// observed there: an acknowledged produce writes its own offset, and the
// other offsets of a value go to its indefinite produces. Everything else
// (polls, indefinite produces nobody observed, spare retries) changes no
// state. What is left is timing: the writes must happen in offset order,
// each at or after its call, an acknowledged write at or before its return,
// and the write of every offset a poll read at or before the poll's return.
// Writing each offset as early as possible (at the latest call among the
// writers of it and of every lower offset) satisfies every deadline that
// any schedule satisfies, so one scan in offset order decides.

// slot is one observed offset, as the offset-order algorithm sees it.
type slot struct {
	offset int64
	value  string
	// writer is the produce (op index) that writes the slot, or -1 while
	// none is assigned.
	writer int
	// deadline is the earliest return among the operations that need the
	// log to reach exactly this slot: its acknowledged writer, and polls
	// whose highest record is here. deadlineOp is that operation, or -1
	// (deadline is then math.MaxInt64).
	deadline   int64
	deadlineOp int
}

// linearizeByOffsets decides partition p of h with the offset-order
// algorithm. The first violation found, in the order conflicting offsets,
// offsets without a writer, real-time order, becomes the anomaly.
func linearizeByOffsets(h *History, p *partitionIndex) (PartitionResult, *Anomaly) {
	result := PartitionResult{Partition: p.tp, Ops: len(p.ops), Linearized: countLinearized(h, p), Method: MethodOffsets}
	slots, anomaly := observedSlots(h, p)
	if anomaly == nil {
		anomaly = assignWriters(h, p, slots)
	}
	if anomaly == nil {
		setPollDeadlines(h, p, slots)
		anomaly = checkRealTime(h, p, slots)
	}
	result.Verdict = LinearizableOK
	if anomaly != nil {
		result.Verdict = LinearizableIllegal
	}
	return result, anomaly
}

// countLinearized counts the operations that take part in the
// linearization: acknowledged and indefinite produces, and ok polls that
// returned records. porcupineOps hands porcupine the same operations.
func countLinearized(h *History, p *partitionIndex) int {
	count := 0
	for _, i := range p.ops {
		op := &h.Ops[i]
		switch {
		case op.Kind == KindProduce && effectiveOutcome(op) != OutcomeFail:
			count++
		case op.Kind == KindPoll && op.Outcome == OutcomeOK && len(op.Poll.Records) > 0:
			count++
		}
	}
	return count
}

// observedSlots returns one slot per observed offset, ascending. An offset
// observed with two values makes the partition illegal at once: every
// observer must be linearized, an acknowledged produce writes its own value
// and a poll needs the value it read, but one offset holds one value.
func observedSlots(h *History, p *partitionIndex) ([]slot, *Anomaly) {
	var slots []slot
	obs := p.observations
	for start := 0; start < len(obs); {
		end := start + 1
		for end < len(obs) && obs[end].offset == obs[start].offset {
			end++
		}
		if obs[start].value != obs[end-1].value {
			a := inconsistentOffset(h, p.tp, obs[start:end])
			a.Kind = AnomalyNonlinearizable
			a.Explanation = fmt.Sprintf("no single log explains the history: %s, but a log holds one value at each offset", a.Explanation)
			return nil, &a
		}
		slots = append(slots, slot{offset: obs[start].offset, value: obs[start].value, writer: -1, deadline: math.MaxInt64, deadlineOp: -1})
		start = end
	}
	return slots, nil
}

// slotAt returns the index of the slot at offset, which must be observed.
func slotAt(slots []slot, offset int64) int {
	i, found := slices.BinarySearchFunc(slots, offset, func(s slot, o int64) int { return cmp.Compare(s.offset, o) })
	if !found {
		panic(fmt.Sprintf("checker: offset %d is missing from the observed slots", offset))
	}
	return i
}

// assignWriters gives every slot its writer. An acknowledged produce writes
// its own offset, and its return is a deadline there. The offsets of a value
// left without an acknowledged writer go to the value's indefinite produces,
// earliest call to lowest offset: that choice makes the latest call among
// the writers of every prefix of offsets as early as any choice can, and
// only those maxima matter (see checkRealTime). The first slot left without
// a writer, or written by two acknowledgements, makes the partition
// illegal.
func assignWriters(h *History, p *partitionIndex, slots []slot) *Anomaly {
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind != KindProduce || effectiveOutcome(op) != OutcomeOK {
			continue
		}
		s := &slots[slotAt(slots, op.Produce.Offset)]
		if s.value != op.Produce.Value {
			panic(fmt.Sprintf("checker: op #%d acknowledged %q at offset %d, whose slot holds %q", i, op.Produce.Value, s.offset, s.value))
		}
		if s.writer >= 0 {
			return doubleAck(h, p.tp, s.writer, i)
		}
		s.writer, s.deadline, s.deadlineOp = i, op.Return, i
	}
	for start := 0; start < len(p.byValue); {
		end := start + 1
		for end < len(p.byValue) && p.byValue[end].value == p.byValue[start].value {
			end++
		}
		assignIndefinite(h, p, slots, p.byValue[start:end])
		start = end
	}
	for j := range slots {
		if slots[j].writer < 0 {
			return missingWriter(h, p, slots[j])
		}
	}
	return nil
}

// assignIndefinite matches the offsets where one value was observed and
// that no acknowledgement writes (obs, ascending) with the value's
// indefinite produces in call order. Offsets beyond the produces stay
// without a writer; produces beyond the offsets are no-ops.
func assignIndefinite(h *History, p *partitionIndex, slots []slot, obs []observation) {
	var open []int // the slots without a writer, ascending
	for _, o := range obs {
		if j := slotAt(slots, o.offset); slots[j].writer < 0 {
			open = append(open, j)
		}
	}
	if len(open) == 0 {
		return // Most values: acknowledged, and observed only where acknowledged.
	}
	var attempts []int
	for _, i := range p.producers[obs[0].value] {
		if effectiveOutcome(&h.Ops[i]) == OutcomeIndefinite {
			attempts = append(attempts, i)
		}
	}
	byCall(h, attempts)
	for k, j := range open[:min(len(open), len(attempts))] {
		slots[j].writer = attempts[k]
	}
}

// setPollDeadlines lowers each slot's deadline to the earliest return of a
// poll whose highest record is there: the log reached that offset before
// the poll returned.
func setPollDeadlines(h *History, p *partitionIndex, slots []slot) {
	for _, i := range p.ops {
		op := &h.Ops[i]
		if op.Kind != KindPoll || op.Outcome != OutcomeOK || len(op.Poll.Records) == 0 {
			continue
		}
		highest := int64(-1)
		for _, r := range op.Poll.Records {
			highest = max(highest, r.Offset)
		}
		if s := &slots[slotAt(slots, highest)]; op.Return < s.deadline {
			s.deadline, s.deadlineOp = op.Return, i
		}
	}
}

// checkRealTime checks that the slots can be written in offset order within
// the operations' windows. Writing each slot at the latest call among the
// writers of it and of every lower slot is the earliest possible schedule,
// so the partition is linearizable exactly when no deadline falls before
// that time. Times compare as porcupine compares them: an operation that
// returns at the instant another is called overlaps it.
func checkRealTime(h *History, p *partitionIndex, slots []slot) *Anomaly {
	latest := -1 // the slot whose writer was called last, so far
	for j := range slots {
		s := &slots[j]
		if s.writer < 0 {
			panic(fmt.Sprintf("checker: slot at offset %d of %s has no writer", s.offset, p.tp))
		}
		if latest < 0 || h.Ops[s.writer].Call > h.Ops[slots[latest].writer].Call {
			latest = j
		}
		if s.deadline < h.Ops[slots[latest].writer].Call {
			return tooLate(h, p.tp, s, &slots[latest])
		}
	}
	return nil
}

// doubleAck explains two acknowledgements of one offset.
func doubleAck(h *History, tp TopicPartition, first, second int) *Anomaly {
	produce := h.Ops[second].Produce
	return &Anomaly{
		Kind: AnomalyNonlinearizable, Partition: tp, Ops: []int{second, first}, Offset: produce.Offset, Value: produce.Value,
		Explanation: fmt.Sprintf("%s and %s were both acknowledged at offset %d, but a log takes one write at each offset",
			describeOp(h, second), describeOp(h, first), produce.Offset),
	}
}

// missingWriter explains an observed offset that no produce can have
// written: its value was never produced, or every produce of it failed
// definitely, or its produces are used up by the value's other offsets.
func missingWriter(h *History, p *partitionIndex, s slot) *Anomaly {
	first, _ := slices.BinarySearchFunc(p.observations, observation{offset: s.offset, value: s.value}, compareObservations)
	reader := p.observations[first].op
	producers := p.producers[s.value]
	failed, acked := 0, 0
	for _, i := range producers {
		switch effectiveOutcome(&h.Ops[i]) {
		case OutcomeFail:
			failed++
		case OutcomeOK:
			acked++
		}
	}
	why := fmt.Sprintf("no operation produced %q in %s", s.value, p.tp)
	switch {
	case len(producers) == 0:
	case failed == len(producers):
		why = fmt.Sprintf("every produce of %q failed definitely", s.value)
	default:
		why = fmt.Sprintf("%q was observed at %d offsets, more than its %d acknowledged and %d indefinite produces can write (an acknowledged produce writes only its own offset, an indefinite one at most one offset)",
			s.value, countOffsets(p, s.value), acked, len(producers)-failed-acked)
	}
	return &Anomaly{
		Kind: AnomalyNonlinearizable, Partition: p.tp, Ops: []int{reader}, Offset: s.offset, Value: s.value,
		Explanation: fmt.Sprintf("%s read %q at offset %d, but no write can have put it there: %s",
			describeOp(h, reader), s.value, s.offset, why),
	}
}

// countOffsets counts the offsets where value was observed.
func countOffsets(p *partitionIndex, value string) int {
	first, _ := slices.BinarySearchFunc(p.byValue, value, func(o observation, v string) int { return cmp.Compare(o.value, v) })
	count := 0
	for j := first; j < len(p.byValue) && p.byValue[j].value == value; j++ {
		count++
	}
	return count
}

// tooLate explains a deadline missed: the operation that set slot s's
// deadline returned before the writer of slot late (at or below s) was
// called.
func tooLate(h *History, tp TopicPartition, s, late *slot) *Anomaly {
	x, w := s.deadlineOp, late.writer
	what := fmt.Sprintf("read offset %d (%q)", s.offset, s.value)
	if h.Ops[x].Kind == KindProduce {
		what = fmt.Sprintf("was acknowledged at offset %d for %q", s.offset, s.value)
	}
	why := "the read saw a write that had not begun"
	if late.offset < s.offset {
		why = fmt.Sprintf("in one log, offset %d is written before offset %d", late.offset, s.offset)
	}
	return &Anomaly{
		Kind: AnomalyNonlinearizable, Partition: tp, Ops: []int{x, w}, Offset: late.offset, Value: late.value,
		Explanation: fmt.Sprintf("%s %s and returned at time %d, before %s, which wrote %q at offset %d, was called at time %d: %s",
			describeOp(h, x), what, h.Ops[x].Return, describeOp(h, w), late.value, late.offset, h.Ops[w].Call, why),
	}
}
