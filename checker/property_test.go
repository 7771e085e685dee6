package checker

import (
	"bytes"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// rapidSource draws the generator's choices from rapid, so that failures
// shrink.
type rapidSource struct{ t *rapid.T }

func (s rapidSource) IntN(n int) int { return rapid.IntRange(0, n-1).Draw(s.t, "n") }

// cloneHistory deep-copies h through its JSON encoding.
func cloneHistory(t *rapid.T, h *History) History {
	var buf bytes.Buffer
	if err := EncodeJSON(&buf, h); err != nil {
		t.Fatal(err)
	}
	clone, err := DecodeJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return clone
}

// TestPropertyCorrectHistoriesPassMutantsFail generates random correct
// executions of a partition log (acknowledged, indefinite applied or not,
// failed and acks=0 produces, idempotent and retried non-idempotent sends,
// in-order consumers that commit, resetting readers, a drain) with
// overlapping call/return windows, and requires Check to pass them. It then
// changes one read value or one acknowledged offset so that one offset must
// hold two values, and requires both Check and the linearizability check
// alone to fail. Porcupine must agree with the offset method on both.
func TestPropertyCorrectHistoriesPassMutantsFail(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var h History
		genPartition(rapidSource{t}, &h, TopicPartition{Topic: "t"}, rapid.IntRange(1, 80).Draw(t, "steps"), 0)
		if r := Check(&h, Options{}); r.Status != StatusOK {
			t.Fatalf("a correct history fails:\n%s\n%s", r.Report(), h.Text())
		}
		decideBoth(t, &h)
		mutant := cloneHistory(t, &h)
		var what string
		if rapid.Bool().Draw(t, "mutate a read") {
			what = mutateRead(t, &mutant)
		} else {
			what = mutateAck(t, &mutant)
		}
		if what == "" {
			return // nothing of that kind to mutate in this history
		}
		if r := Check(&mutant, Options{}); r.Status != StatusFail {
			t.Fatalf("mutant (%s) passes:\n%s\n%s", what, r.Report(), mutant.Text())
		}
		if anomalies, _, _ := Linearizable(&mutant, Options{}); len(anomalies) == 0 {
			t.Fatalf("mutant (%s) is linearizable:\n%s", what, mutant.Text())
		}
		decideBoth(t, &mutant)
	})
}

// TestPropertyMethodsAgree generates small correct partitions, breaks them
// with up to three random edits (an operation's window moved, a produce's
// outcome or acknowledged offset changed, a read record's value or offset
// changed, a record dropped), and requires the offset method and porcupine
// to give the same verdict. Both verdicts must turn up often, so that the
// agreement is not only ever tested on one side.
func TestPropertyMethodsAgree(t *testing.T) {
	verdicts := make(map[Linearizability]int)
	rapid.Check(t, func(t *rapid.T) {
		var h History
		steps := rapid.IntRange(1, 40).Draw(t, "steps")
		genPartition(rapidSource{t}, &h, TopicPartition{Topic: "t"}, steps, 0)
		for range rapid.IntRange(0, 3).Draw(t, "edits") {
			editHistory(t, &h, int64(200+10*steps))
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("an edit broke the history format: %v", err)
		}
		verdicts[decideBoth(t, &h)[0].Verdict]++
	})
	t.Logf("verdicts %v", verdicts)
	if verdicts[LinearizableOK] < 10 || verdicts[LinearizableIllegal] < 10 {
		t.Fatalf("verdicts %v: both ok and illegal should be common", verdicts)
	}
}

// editHistory applies one random edit to a generated history whose times
// lie below timeMax, keeping it valid.
func editHistory(t *rapid.T, h *History, timeMax int64) {
	op := &h.Ops[rapid.IntRange(0, len(h.Ops)-1).Draw(t, "op")]
	switch rapid.IntRange(0, 3).Draw(t, "edit") {
	case 0:
		op.Call = rapid.Int64Range(0, timeMax).Draw(t, "call")
		op.Return = op.Call + rapid.Int64Range(0, 60).Draw(t, "length")
	case 1:
		if op.Produce == nil {
			return
		}
		op.Outcome = rapid.SampledFrom([]Outcome{OutcomeOK, OutcomeIndefinite, OutcomeFail}).Draw(t, "outcome")
		op.Produce.Offset = rapid.Int64Range(0, int64(len(h.Ops))).Draw(t, "offset")
	default:
		if op.Poll == nil || len(op.Poll.Records) == 0 {
			return
		}
		editRecords(t, h, op.Poll)
	}
}

// editRecords changes one record of poll: its value to another produced
// value or a phantom, its offset, or drops it.
func editRecords(t *rapid.T, h *History, poll *Poll) {
	j := rapid.IntRange(0, len(poll.Records)-1).Draw(t, "record")
	r := &poll.Records[j]
	switch rapid.IntRange(0, 2).Draw(t, "record edit") {
	case 0:
		other := h.Ops[rapid.IntRange(0, len(h.Ops)-1).Draw(t, "value of")]
		r.Value = "phantom"
		if other.Produce != nil {
			r.Value = other.Produce.Value
		}
	case 1:
		r.Offset = rapid.Int64Range(0, int64(len(h.Ops))).Draw(t, "record offset")
	default:
		poll.Records = append(poll.Records[:j], poll.Records[j+1:]...)
	}
}

// drained returns the final drain's records of a generated history.
func drained(h *History) []Record {
	for i := range h.Ops {
		if p := h.Ops[i].Poll; p != nil && p.Final {
			return p.Records
		}
	}
	panic("generated history without a drain")
}

// mutateRead changes one record of a non-final poll to a value the drain
// does not show at that offset (another value of the log, or one nobody
// produced), and describes the change.
func mutateRead(t *rapid.T, h *History) string {
	var reads []*Record
	for i := range h.Ops {
		if p := h.Ops[i].Poll; p != nil && !p.Final {
			for j := range p.Records {
				reads = append(reads, &p.Records[j])
			}
		}
	}
	if len(reads) == 0 {
		return ""
	}
	r := reads[rapid.IntRange(0, len(reads)-1).Draw(t, "read")]
	log := drained(h)
	other := log[rapid.IntRange(0, len(log)-1).Draw(t, "other")].Value
	if other == r.Value || rapid.Bool().Draw(t, "phantom") {
		other = "phantom"
	}
	r.Value = other
	return fmt.Sprintf("read at offset %d now returns %q", r.Offset, other)
}

// mutateAck moves one acknowledged offset to an offset the drain shows
// holding another value, and describes the change.
func mutateAck(t *rapid.T, h *History) string {
	var acks []*Produce
	for i := range h.Ops {
		if acknowledged(&h.Ops[i]) {
			acks = append(acks, h.Ops[i].Produce)
		}
	}
	if len(acks) == 0 {
		return ""
	}
	p := acks[rapid.IntRange(0, len(acks)-1).Draw(t, "ack")]
	var targets []int64
	for _, r := range drained(h) {
		if r.Value != p.Value {
			targets = append(targets, r.Offset)
		}
	}
	if len(targets) == 0 {
		return ""
	}
	p.Offset = targets[rapid.IntRange(0, len(targets)-1).Draw(t, "target")]
	return fmt.Sprintf("ack of %q now at offset %d", p.Value, p.Offset)
}
