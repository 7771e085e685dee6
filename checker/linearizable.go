package checker

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/anishathalye/porcupine"
)

// linearizabilityStepsMaxDefault bounds porcupine's search in one partition,
// counted in model steps. Porcupine rescans the operations still pending
// after every step it takes, so a correct history costs about its length
// times the number of operations pending at once: sim seed 340 (16,299
// ops, about 2,000 acks=0 produces pending at any time) needs 26 million.
// MethodOffsets needs no budget.
const linearizabilityStepsMaxDefault = 20_000_000

// Method is how the linearizability of a partition is decided.
type Method string

// The methods.
const (
	// MethodOffsets decides directly from the observed offsets, in
	// O(n log n) time for n operations, with no search and no budget
	// (offsets.go). It is the default.
	MethodOffsets Method = "offsets"
	// MethodPorcupine searches with porcupine against logModel. It decides
	// the same question, but its search is quadratic for correct histories
	// with many concurrent operations and can be exponential for incorrect
	// ones, so Options.LinearizabilityStepsMax bounds it. It serves as an
	// independent cross-check, and its partial linearizations drive
	// Visualize.
	MethodPorcupine Method = "porcupine"
)

// Linearizability is the linearizability verdict for one partition.
type Linearizability string

// The linearizability verdicts.
const (
	// LinearizableOK: an order consistent with one log exists.
	LinearizableOK Linearizability = "ok"
	// LinearizableIllegal: no such order exists.
	LinearizableIllegal Linearizability = "illegal"
	// LinearizableUnknown: the search ran out of its step budget
	// (Options.LinearizabilityStepsMax) before deciding. It is never a
	// pass.
	LinearizableUnknown Linearizability = "unknown"
)

// PartitionResult is what the linearizability check found in one partition.
type PartitionResult struct {
	Partition TopicPartition `json:"partition"`
	// Ops counts the partition's operations; Linearized counts those that
	// take part in the linearization (failed produces and empty or failed
	// polls are left out), whatever the method.
	Ops        int             `json:"ops"`
	Linearized int             `json:"linearized"`
	Verdict    Linearizability `json:"verdict"`
	// Method is how the verdict was reached.
	Method Method `json:"method"`
	// Steps is the number of model steps porcupine's search took; it is 0
	// for MethodOffsets, which does not search.
	Steps int64 `json:"steps"`
}

// porcupineOps turns a partition's operations into porcupine operations.
// Definitely failed produces are left out (they did not happen), as are
// polls that returned nothing (they constrain nothing). An indefinite
// produce whose value was observed gets an infinite return time: its effect
// may come at any time after its call.
func porcupineOps(h *History, p *partitionIndex, m *logModel) []porcupine.Operation {
	var ops []porcupine.Operation
	for _, i := range p.ops {
		op := &h.Ops[i]
		var input any
		ret := op.Return
		switch {
		case op.Kind == KindProduce && effectiveOutcome(op) == OutcomeOK:
			input = produceInput{op: i, value: op.Produce.Value, acked: true, offset: op.Produce.Offset}
		case op.Kind == KindProduce && effectiveOutcome(op) == OutcomeIndefinite:
			input = produceInput{op: i, value: op.Produce.Value}
			if len(m.seen[op.Produce.Value]) > 0 {
				ret = math.MaxInt64
			}
		case op.Kind == KindPoll && op.Outcome == OutcomeOK && len(op.Poll.Records) > 0:
			input = m.pollInput(i, op.Poll.Records)
		default:
			continue
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: input, Call: op.Call, Return: ret, Metadata: i})
	}
	return ops
}

// pollInput precomputes what the model needs to judge a poll quickly.
func (m *logModel) pollInput(i int, records []Record) pollInput {
	in := pollInput{op: i, records: records, highest: -1}
	for _, r := range records {
		in.highest = max(in.highest, r.Offset)
		j, found := slices.BinarySearch(m.offsets, r.Offset)
		if !found {
			panic(fmt.Sprintf("checker: op #%d read offset %d, which is missing from the observations", i, r.Offset))
		}
		in.conflicting = in.conflicting || m.conflicting(j)
	}
	return in
}

// checkLinearizable decides every partition, one at a time, by opts'
// method. Porcupine runs without a timeout, bounded by a count of steps, so
// that the verdict does not depend on the machine.
func checkLinearizable(ix *historyIndex, opts Options) ([]Anomaly, []PartitionResult) {
	var anomalies []Anomaly
	results := make([]PartitionResult, 0, len(ix.partitions))
	for _, p := range ix.partitions {
		var result PartitionResult
		var anomaly *Anomaly
		switch opts.method() {
		case MethodOffsets:
			result, anomaly = linearizeByOffsets(ix.h, p)
		case MethodPorcupine:
			result, anomaly = linearizeByPorcupine(ix.h, p, opts.stepsMax())
		default:
			panic(fmt.Sprintf("checker: unknown method %q", opts.Method))
		}
		results = append(results, result)
		if anomaly != nil {
			anomalies = append(anomalies, *anomaly)
		}
	}
	return anomalies, results
}

// linearizeByPorcupine decides partition p of h with porcupine, within
// stepsMax model steps.
func linearizeByPorcupine(h *History, p *partitionIndex, stepsMax int64) (PartitionResult, *Anomaly) {
	m := newLogModel(p, stepsMax)
	ops := porcupineOps(h, p, m)
	verdict, info := porcupine.CheckOperationsVerbose(m.porcupineModel(), ops, 0)
	result := PartitionResult{Partition: p.tp, Ops: len(p.ops), Linearized: len(ops), Method: MethodPorcupine, Steps: m.steps}
	switch {
	case m.exhausted:
		result.Verdict = LinearizableUnknown
		return result, nil
	case verdict == porcupine.Ok:
		result.Verdict = LinearizableOK
		return result, nil
	case verdict == porcupine.Illegal:
		result.Verdict = LinearizableIllegal
		anomaly := explainNonlinearizable(h, p, ops, info)
		return result, &anomaly
	default:
		panic(fmt.Sprintf("checker: porcupine without a timeout returned %q", verdict))
	}
}

// longestPartial returns the longest partial linearization porcupine found
// (operation positions in ops), the lexicographically smallest among equals,
// so that the explanation does not depend on porcupine's map order.
func longestPartial(info porcupine.LinearizationInfo) []int {
	partitions := info.PartialLinearizations()
	if len(partitions) == 0 {
		return nil
	}
	var best []int
	for _, partial := range partitions[0] {
		if len(partial) > len(best) || (len(partial) == len(best) && slices.Compare(partial, best) < 0) {
			best = partial
		}
	}
	return best
}

// explainNonlinearizable names the operation that cannot follow the longest
// legal prefix: among the operations left out of it, the one that must
// complete first.
func explainNonlinearizable(h *History, p *partitionIndex, ops []porcupine.Operation, info porcupine.LinearizationInfo) Anomaly {
	m := newLogModel(p, 0)
	prefix := longestPartial(info)
	var state any = &logState{}
	linearized := make([]bool, len(ops))
	for _, id := range prefix {
		ok, next := m.step(state, ops[id].Input)
		if !ok {
			panic(fmt.Sprintf("checker: porcupine's partial linearization of %s does not replay at op #%d", p.tp, ops[id].Metadata))
		}
		state, linearized[id] = next, true
	}
	culprit := -1
	for id := range ops {
		if linearized[id] {
			continue
		}
		if culprit < 0 || cmp.Compare(ops[id].Return, ops[culprit].Return) < 0 {
			culprit = id
		}
	}
	if culprit < 0 {
		panic(fmt.Sprintf("checker: porcupine found %s illegal but linearized every operation", p.tp))
	}
	s := state.(*logState)
	index := ops[culprit].Metadata.(int)
	reason, offset := m.whyIllegal(s, ops[culprit].Input)
	return Anomaly{
		Kind: AnomalyNonlinearizable, Partition: p.tp, Ops: []int{index}, Offset: offset,
		Explanation: fmt.Sprintf("no order of the %d linearizable operations is consistent with one log and with real time: the longest consistent prefix orders %d of them and leaves the log at length %d, and %s cannot follow it: %s",
			len(ops), len(prefix), s.next, describeOp(h, index), reason),
	}
}

// whyIllegal says why input cannot take effect in state s, and at which
// offset.
func (m *logModel) whyIllegal(s *logState, input any) (string, int64) {
	switch in := input.(type) {
	case produceInput:
		next := "the log has no further observed offset"
		if i := m.nextObserved(s.next); i < len(m.offsets) {
			next = fmt.Sprintf("the next observed offset is %d", m.offsets[i])
		}
		if in.acked {
			return fmt.Sprintf("it was acknowledged at offset %d for %q, but %s", in.offset, in.value, next), in.offset
		}
		at := m.seen[in.value]
		if len(at) == 0 {
			return fmt.Sprintf("its indefinite value %q was never observed, so it can always take effect; it is blocked by its real-time window", in.value), -1
		}
		return fmt.Sprintf("its indefinite value %q was observed at offsets %v, but %s", in.value, at, next), at[0]
	case pollInput:
		for _, r := range in.records {
			if r.Offset >= s.next {
				return fmt.Sprintf("it read %q at offset %d, beyond the end of the log", r.Value, r.Offset), r.Offset
			}
			if value, chosen := s.valueAt(r.Offset); chosen && value != r.Value {
				return fmt.Sprintf("it read %q at offset %d, which holds %q in this order", r.Value, r.Offset, value), r.Offset
			}
		}
		return "its records can be read here, but not within its real-time window", in.highest
	default:
		panic(fmt.Sprintf("checker: unknown model input %T", input))
	}
}

// Visualize writes porcupine's HTML visualization of partition tp of h to
// w: the history on a timeline and the longest linearizations found. It
// always searches with porcupine, whatever opts.Method, within opts' step
// budget: on a large partition with many concurrent operations the search
// may run out and show only its longest partial linearizations. Check's
// report names the violation directly. The HTML lists porcupine's partial
// linearizations in an order that porcupine does not fix, so two renderings
// of one history may differ byte for byte while showing the same thing.
func Visualize(w io.Writer, h *History, tp TopicPartition, opts Options) error {
	if err := cmp.Or(opts.validate(), h.Validate()); err != nil {
		return err
	}
	ix := buildIndex(h)
	i := slices.IndexFunc(ix.partitions, func(p *partitionIndex) bool { return p.tp == tp })
	if i < 0 {
		return fmt.Errorf("checker: visualize: the history has no operation on %s", tp)
	}
	p := ix.partitions[i]
	m := newLogModel(p, opts.stepsMax())
	_, info := porcupine.CheckOperationsVerbose(m.porcupineModel(), porcupineOps(h, p, m), 0)
	// The visualization replays partial linearizations through the model,
	// so it must not run out of budget.
	m.stepsMax = 0
	if err := porcupine.Visualize(m.porcupineModel(), info, w); err != nil {
		return fmt.Errorf("checker: visualize %s: %w", tp, err)
	}
	return nil
}
