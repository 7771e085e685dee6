package scenario

import (
	"slices"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/checker"
)

// porcupineSeedsCount is how many seeds (1, 2, ...) of small real runs both
// methods judge.
const porcupineSeedsCount = 40

// porcupineSafetyDuration is the safety phase of those runs. Porcupine's
// search must exhaust every order to reject a mutant; with three seconds it
// ran out of its default budget (20 million steps) on 3 of 20 mutants, and
// with two seconds on 1 of 16, where the offset method decides at once.
const porcupineSafetyDuration = 1500 * time.Millisecond

// smallRun runs seed with every fault, on one partition, with a short
// safety phase: a real history small enough for porcupine's search.
func smallRun(t *testing.T, seed uint64) Result {
	t.Helper()
	faults, err := ParseFaults("all")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Derive(seed, faults)
	cfg.Partitions = 1
	cfg.SafetyDuration = porcupineSafetyDuration
	return Run(cfg, Options{})
}

// largest records the largest partition porcupine searched: operations
// taking part and model steps.
var largest struct {
	linearized int
	steps      int64
}

// verdicts decides h's linearizability with method and returns the
// partitions' verdicts and the number of anomalies.
func verdicts(t *testing.T, h *checker.History, method checker.Method) ([]checker.Linearizability, int) {
	t.Helper()
	anomalies, partitions, err := checker.Linearizable(h, checker.Options{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	var out []checker.Linearizability
	for _, p := range partitions {
		out = append(out, p.Verdict)
		if method == checker.MethodPorcupine && p.Linearized > largest.linearized {
			largest.linearized, largest.steps = p.Linearized, p.Steps
		}
	}
	return out, len(anomalies)
}

// TestPorcupineAgreesOnRealHistories checks small real simulator
// histories with porcupine's search and with the offset method and
// requires the same verdict, on each history as recorded and on a mutant
// whose two acknowledged writes swap offsets (which both must reject, but
// porcupine may run out of its step budget on a few: polls span the
// windows of the fetches that served them, and proving a mutant illegal
// means exhausting every order of overlapping operations). The
// property tests compare the methods on generated histories; these are
// what the simulator really records: retries, acks=0, indefinite outcomes,
// resets and the drain.
func TestPorcupineAgreesOnRealHistories(t *testing.T) {
	linearized, mutants, undecided := 0, 0, 0
	for seed := uint64(1); seed <= porcupineSeedsCount; seed++ {
		result := smallRun(t, seed)
		if result.Err != nil {
			t.Fatalf("seed %d: %v", seed, result.Err)
		}
		h := &result.History
		offsets, _ := verdicts(t, h, checker.MethodOffsets)
		porcupine, _ := verdicts(t, h, checker.MethodPorcupine)
		if !slices.Equal(offsets, porcupine) {
			t.Errorf("seed %d: offsets say %v, porcupine %v", seed, offsets, porcupine)
		}
		if slices.Contains(offsets, checker.LinearizableOK) {
			linearized++
		}
		if mutant, ok := swapAcknowledgedOffsets(h); ok {
			mutants++
			offsets, offsetAnomalies := verdicts(t, mutant, checker.MethodOffsets)
			porcupine, porcupineAnomalies := verdicts(t, mutant, checker.MethodPorcupine)
			if offsetAnomalies > 0 && slices.Equal(porcupine, []checker.Linearizability{checker.LinearizableUnknown}) {
				undecided++ // out of budget: no verdict, never a pass
				continue
			}
			if !slices.Equal(offsets, porcupine) || offsetAnomalies == 0 || porcupineAnomalies == 0 {
				t.Errorf("seed %d mutant: offsets say %v (%d anomalies), porcupine %v (%d anomalies); want both to reject it",
					seed, offsets, offsetAnomalies, porcupine, porcupineAnomalies)
			}
		}
	}
	t.Logf("%d of %d runs linearizable, %d mutants compared (%d left undecided by porcupine's budget); the largest partition had %d operations (%d porcupine steps)",
		linearized, porcupineSeedsCount, mutants, undecided, largest.linearized, largest.steps)
	if undecided > mutants/8 {
		t.Errorf("porcupine left %d of %d mutants undecided: too few compared", undecided, mutants)
	}
	if linearized < porcupineSeedsCount/2 || mutants < porcupineSeedsCount/2 {
		t.Errorf("%d of %d runs linearizable and %d mutants: too few to compare the methods", linearized, porcupineSeedsCount, mutants)
	}
}

// swapAcknowledgedOffsets returns a copy of h in which the first two
// durably acknowledged produces to the same partition, at different
// offsets and both read by some poll, swap their offsets: each
// acknowledgement now names the slot where a poll read the other value.
func swapAcknowledgedOffsets(h *checker.History) (*checker.History, bool) {
	mutant := &checker.History{Ops: slices.Clone(h.Ops), Ends: h.Ends, Groups: h.Groups, Retention: h.Retention}
	read := make(map[string]bool)
	for _, op := range h.Ops {
		if op.Kind == checker.KindPoll && op.Outcome == checker.OutcomeOK {
			for _, r := range op.Poll.Records {
				read[r.Value] = true
			}
		}
	}
	first := -1
	for i := range mutant.Ops {
		op := &mutant.Ops[i]
		if op.Kind != checker.KindProduce || op.Outcome != checker.OutcomeOK || !op.Produce.Durable ||
			op.Produce.Acks == checker.AcksNone || !read[op.Produce.Value] {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		a, b := *mutant.Ops[first].Produce, *op.Produce
		if a.Offset == b.Offset || mutant.Ops[first].TopicPartition() != op.TopicPartition() {
			continue
		}
		a.Offset, b.Offset = b.Offset, a.Offset
		mutant.Ops[first].Produce, op.Produce = &a, &b
		return mutant, true
	}
	return nil, false
}
