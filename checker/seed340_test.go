package checker

import (
	"cmp"
	"compress/gzip"
	"os"
	"slices"
	"testing"
)

// seed340Path is the history of `sim --seed 340 --faults all`: one
// partition, 16,299 ops, about 2,000 acks=0 produces pending at any time.
// Porcupine needs 26 million steps for it, over the default budget.
const seed340Path = "testdata/seed340-all.json.gz"

// seed340 caches the decoded history; tests copy before mutating it.
var seed340 *History

func loadSeed340(t testing.TB) *History {
	t.Helper()
	if seed340 != nil {
		return seed340
	}
	f, err := os.Open(seed340Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeJSON(z)
	if err != nil {
		t.Fatal(err)
	}
	seed340 = &h
	return seed340
}

// TestSeed340Linearizable checks that the real history of sim seed 340,
// which porcupine cannot decide within its default budget, is decided OK:
// the simulated system was correct. The mutants below show the same call
// can fail on this history.
func TestSeed340Linearizable(t *testing.T) {
	h := loadSeed340(t)
	r := Check(h, Options{})
	if r.Status != StatusOK {
		t.Fatalf("seed 340: %s", r.Report())
	}
	if p := r.Partitions[0]; p.Method != MethodOffsets || p.Linearized != 15923 {
		t.Fatalf("partition %+v, want 15923 ops linearized by offsets", p)
	}
}

// seed340Mutant returns a copy of the seed 340 history sharing everything
// but the Ops slice, so that a mutation replaces payloads rather than
// editing them in place.
func seed340Mutant(t *testing.T) *History {
	h := loadSeed340(t)
	return &History{Ops: slices.Clone(h.Ops), Ends: h.Ends}
}

// ackedByOffset returns the acknowledged produces of h, by offset.
func ackedByOffset(h *History) []int {
	var acked []int
	for i := range h.Ops {
		if acknowledged(&h.Ops[i]) {
			acked = append(acked, i)
		}
	}
	slices.SortFunc(acked, func(a, b int) int { return cmp.Compare(h.Ops[a].Produce.Offset, h.Ops[b].Produce.Offset) })
	return acked
}

// setProduce replaces op i's produce payload by an edited copy.
func setProduce(h *History, i int, edit func(p *Produce)) {
	p := *h.Ops[i].Produce
	edit(&p)
	h.Ops[i].Produce = &p
}

// TestSeed340MutantsFail breaks the seed 340 history in four ways, each of
// which one log cannot explain, and requires Check to fail with a
// nonlinearizable anomaly naming the expected operation: two acknowledged
// offsets swapped, the drain returning another value at an acknowledged
// offset, an acknowledgement returning before a lower offset's write was
// called, and a large poll moved before the writes it read.
func TestSeed340MutantsFail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, h *History) (witness int)
	}{
		{"swap two acked offsets", mutateSwapAcks},
		{"drain value at an acked offset", mutateDrainValue},
		{"ack before a lower write", mutateEarlyAck},
		{"poll before its writes", mutateEarlyPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := seed340Mutant(t)
			witness := tc.mutate(t, h)
			r := Check(h, Options{})
			if r.Status != StatusFail || len(r.Anomalies) == 0 || r.Anomalies[0].Kind != AnomalyNonlinearizable {
				t.Fatalf("mutant not rejected as nonlinearizable:\n%s", r.Report())
			}
			if !slices.Contains(r.Anomalies[0].Ops, witness) {
				t.Fatalf("anomaly %s does not name op #%d", r.Anomalies[0], witness)
			}
			t.Log(r.Anomalies[0])
		})
	}
}

// mutateSwapAcks swaps the offsets of the two middle acknowledgements; the
// lower offset is then acknowledged to the second with the first's value
// read there.
func mutateSwapAcks(t *testing.T, h *History) int {
	acked := ackedByOffset(h)
	a, b := acked[len(acked)/2], acked[len(acked)/2+1]
	oa, ob := h.Ops[a].Produce.Offset, h.Ops[b].Produce.Offset
	setProduce(h, a, func(p *Produce) { p.Offset = ob })
	setProduce(h, b, func(p *Produce) { p.Offset = oa })
	return b
}

// mutateDrainValue makes the drain return, at the middle acknowledged
// offset, the value of an indefinite produce that nobody read.
func mutateDrainValue(t *testing.T, h *History) int {
	read := make(map[string]bool)
	drain := -1
	for i := range h.Ops {
		if p := h.Ops[i].Poll; p != nil && p.Final {
			drain = i
			for _, r := range p.Records {
				read[r.Value] = true
			}
		}
	}
	unread := ""
	for i := range h.Ops {
		if op := &h.Ops[i]; op.Kind == KindProduce && effectiveOutcome(op) == OutcomeIndefinite && !read[op.Produce.Value] {
			unread = op.Produce.Value
			break
		}
	}
	if drain < 0 || unread == "" {
		t.Fatal("seed 340 has no drain or no unread indefinite produce")
	}
	acked := ackedByOffset(h)
	offset := h.Ops[acked[len(acked)/2]].Produce.Offset
	poll := *h.Ops[drain].Poll
	poll.Records = slices.Clone(poll.Records)
	j := slices.IndexFunc(poll.Records, func(r Record) bool { return r.Offset == offset })
	poll.Records[j].Value = unread
	h.Ops[drain].Poll = &poll
	return drain
}

// mutateEarlyAck finds the lowest acknowledged offset whose produce was
// called before the produce of a lower acknowledged offset, and makes it
// return just before that call.
func mutateEarlyAck(t *testing.T, h *History) int {
	latest := -1 // the acknowledged produce called last, so far
	for _, i := range ackedByOffset(h) {
		if latest >= 0 && h.Ops[i].Call < h.Ops[latest].Call {
			h.Ops[i].Return = h.Ops[latest].Call - 1
			return i
		}
		if latest < 0 || h.Ops[i].Call > h.Ops[latest].Call {
			latest = i
		}
	}
	t.Fatal("seed 340 has no acknowledgement called before a lower one")
	return -1
}

// mutateEarlyPoll moves the first poll that read over a thousand records
// to the start of the run, before most of what it read was written.
func mutateEarlyPoll(t *testing.T, h *History) int {
	for i := range h.Ops {
		if p := h.Ops[i].Poll; p != nil && !p.Final && len(p.Records) > 1000 {
			h.Ops[i].Call, h.Ops[i].Return = 1_000_000, 1_000_000
			return i
		}
	}
	t.Fatal("seed 340 has no poll of over a thousand records")
	return -1
}

// BenchmarkCheckSeed340 measures Check, every check included, on the
// history of sim seed 340.
func BenchmarkCheckSeed340(b *testing.B) {
	h := loadSeed340(b)
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(h, Options{}); r.Status != StatusOK {
			b.Fatal(r.Verdict)
		}
	}
}

// BenchmarkLinearizableSeed340 measures the offset method alone on the
// history of sim seed 340.
func BenchmarkLinearizableSeed340(b *testing.B) {
	h := loadSeed340(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Linearizable(h, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
