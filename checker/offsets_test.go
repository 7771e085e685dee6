package checker

import (
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// porcupineStepsMaxTest bounds porcupine in cross-checks of small
// histories; they need a few thousand steps at most.
const porcupineStepsMaxTest = 1_000_000

// decideBoth decides the partitions of h with both methods, fails the test
// unless they agree partition by partition, and returns the offset
// method's verdicts. A case porcupine cannot decide within its budget is
// skipped.
func decideBoth(t rapid.TB, h *History) []PartitionResult {
	t.Helper()
	_, fast, err := Linearizable(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, slow, err := Linearizable(h, Options{Method: MethodPorcupine, LinearizabilityStepsMax: porcupineStepsMaxTest})
	if err != nil {
		t.Fatal(err)
	}
	for i := range fast {
		if fast[i].Method != MethodOffsets || slow[i].Method != MethodPorcupine {
			t.Fatalf("methods %s and %s, want offsets and porcupine", fast[i].Method, slow[i].Method)
		}
		if slow[i].Verdict == LinearizableUnknown {
			t.Skipf("porcupine did not decide %s within %d steps", slow[i].Partition, porcupineStepsMaxTest)
		}
		if fast[i].Verdict != slow[i].Verdict || fast[i].Linearized != slow[i].Linearized {
			t.Fatalf("%s: offsets says %s (%d ops), porcupine says %s (%d ops)\n%s",
				fast[i].Partition, fast[i].Verdict, fast[i].Linearized, slow[i].Verdict, slow[i].Linearized, h.Text())
		}
	}
	return fast
}

// retries is a non-idempotent producer whose value "v" was sent twice,
// both attempts indefinite, and landed at offsets 0 and 2; a poll read
// offset 0 at time 30, after the first attempt began and before the second.
func retries() *builder {
	b := newBuilder()
	first := b.produce(0, 10, 20, OutcomeIndefinite, "v", 0)
	first.Idempotent, first.Durable = false, false
	b.produce(1, 25, 60, OutcomeOK, "b", 1)
	second := b.produce(0, 40, 50, OutcomeIndefinite, "v", 0)
	second.Idempotent, second.Durable, second.Seq = false, false, first.Seq
	b.poll(2, 28, 30, 0, rec(0, "v"))
	b.drain(100, 0, rec(0, "v"), rec(1, "b"), rec(2, "v"))
	return b
}

// TestOffsetsMatchRetriesByCall checks that the offset method gives a
// value's lowest offset to its earliest indefinite attempt: the poll at
// time 30 is explained only if the attempt called at 10 wrote offset 0.
// Calling that attempt after the poll returned leaves no explanation.
// Porcupine must agree both times.
func TestOffsetsMatchRetriesByCall(t *testing.T) {
	b := retries()
	mustCheck(t, &b.h)
	if got := decideBoth(t, &b.h)[0].Verdict; got != LinearizableOK {
		t.Fatalf("verdict %s, want ok", got)
	}

	b.h.Ops[0].Call, b.h.Ops[0].Return = 31, 35
	r := mustCheck(t, &b.h, AnomalyNonlinearizable)
	mentions(t, r.Anomalies[0], `op #3 (client 2) read offset 0 ("v") and returned at time 30, before op #0 (client 0), which wrote "v" at offset 0, was called at time 31`)
	if got := decideBoth(t, &b.h)[0].Verdict; got != LinearizableIllegal {
		t.Fatalf("verdict %s, want illegal", got)
	}
}

// TestOffsetsLateFirstAttempt retries a value whose first attempt timed
// out and landed after the acknowledged retry: the acknowledgement keeps
// its own offset and the indefinite attempt takes the higher one.
func TestOffsetsLateFirstAttempt(t *testing.T) {
	b := newBuilder()
	first := b.produce(0, 10, 20, OutcomeIndefinite, "v", 0)
	first.Idempotent, first.Durable = false, false
	second := b.produce(0, 21, 30, OutcomeOK, "v", 0)
	second.Idempotent, second.Seq = false, first.Seq
	b.produce(1, 31, 40, OutcomeOK, "b", 1)
	b.drain(100, 0, rec(0, "v"), rec(1, "b"), rec(2, "v"))
	mustCheck(t, &b.h)
	if got := decideBoth(t, &b.h)[0].Verdict; got != LinearizableOK {
		t.Fatalf("verdict %s, want ok", got)
	}
}

// TestOffsetsRetriesUsedUp reads a retried value at a third offset, which
// its two attempts cannot both have written along with the other two.
func TestOffsetsRetriesUsedUp(t *testing.T) {
	b := retries()
	b.h.Ops[4].Poll.Records = append(b.h.Ops[4].Poll.Records, rec(3, "v"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable)
	mentions(t, r.Anomalies[0], `op #4 (client 9) read "v" at offset 3, but no write can have put it there: "v" was observed at 3 offsets, more than its 0 acknowledged and 2 indefinite produces can write`)
	decideBoth(t, &b.h)
}

// TestOffsetsTouchingWindows checks porcupine's rule for equal times: an
// operation that returns at the instant another is called overlaps it, so
// a poll returning at time 20 may read a write called at 20, but not one
// called at 21; likewise for an acknowledgement at a higher offset.
func TestOffsetsTouchingWindows(t *testing.T) {
	for _, tc := range []struct {
		name      string
		writeCall int64
		want      Linearizability
	}{
		{"same instant", 20, LinearizableOK},
		{"one later", 21, LinearizableIllegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := newBuilder()
			read.produce(0, tc.writeCall, 40, OutcomeOK, "a", 0)
			read.poll(1, 10, 20, 0, rec(0, "a"))
			if got := decideBoth(t, &read.h)[0].Verdict; got != tc.want {
				t.Errorf("poll: verdict %s, want %s", got, tc.want)
			}
			ack := newBuilder()
			ack.produce(0, tc.writeCall, 40, OutcomeOK, "a", 0)
			ack.produce(1, 10, 20, OutcomeOK, "b", 1)
			if got := decideBoth(t, &ack.h)[0].Verdict; got != tc.want {
				t.Errorf("ack: verdict %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOffsetsDoubleAck acknowledges one retried value twice at one offset:
// a log takes one write per offset, so the second acknowledgement has
// nothing left to write.
func TestOffsetsDoubleAck(t *testing.T) {
	b := newBuilder()
	first := b.produce(0, 10, 20, OutcomeOK, "a", 0)
	second := b.produce(0, 30, 40, OutcomeOK, "a", 0)
	first.Idempotent, second.Idempotent, second.Seq = false, false, first.Seq
	b.drain(100, 0, rec(0, "a"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable)
	mentions(t, r.Anomalies[0], "op #1 (client 0) and op #0 (client 0) were both acknowledged at offset 0")
	decideBoth(t, &b.h)
}

// TestOffsetsConflictIsIllegal reads two values at one offset: whatever the
// timing, no log explains it, and the explanation names both readers.
func TestOffsetsConflictIsIllegal(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeIndefinite, "a", 0)
	b.produce(1, 10, 20, OutcomeIndefinite, "b", 0)
	b.poll(2, 30, 40, 0, rec(0, "a"))
	b.poll(3, 30, 40, 0, rec(0, "b"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyInconsistentOffset)
	mentions(t, r.Anomalies[0], "no single log explains the history: offset 0 was observed with 2 values", `"a" (read by op #2`, `"b" (read by op #3`)
	decideBoth(t, &b.h)
}

// TestOptionsRejected passes options that name no method or a negative
// budget and expects an invalid result with a clear error, not a panic.
func TestOptionsRejected(t *testing.T) {
	h := baseline().h
	for _, opts := range []Options{{Method: "guess"}, {LinearizabilityStepsMax: -1}} {
		r := Check(&h, opts)
		if r.Status != StatusInvalid || !errors.Is(r.Err, ErrInvalidOptions) || !strings.HasPrefix(r.Verdict, "INVALID: ") {
			t.Errorf("options %+v: status %s, error %v; want invalid options", opts, r.Status, r.Err)
		}
		if _, _, err := Linearizable(&h, opts); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("options %+v: Linearizable error %v, want invalid options", opts, err)
		}
	}
}
