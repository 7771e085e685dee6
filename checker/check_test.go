package checker

import (
	"slices"
	"strings"
	"testing"
)

// baseline is a correct history: two idempotent producers, a consumer that
// polls in order and commits, a reader, a drain that reaches the end, and a
// lookup by time.
func baseline() *builder {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(1, 15, 30, OutcomeOK, "b", 1)
	b.produce(0, 25, 40, OutcomeOK, "c", 2)
	b.h.Ops[0].Produce.Sequence = &SequenceNumber{ProducerID: 1000, Sequence: 0}
	b.h.Ops[2].Produce.Sequence = &SequenceNumber{ProducerID: 1000, Sequence: 1}
	b.poll(2, 35, 45, 0, rec(0, "a"), rec(1, "b")).Group = "g"
	b.group(2, KindCommit, 46, 50, "g", 2)
	b.poll(2, 51, 60, 2, rec(2, "c")).Group = "g"
	b.group(2, KindCommit, 61, 70, "g", 3)
	b.group(3, KindFetchCommitted, 75, 80, "g", 3)
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"))
	b.end(3)
	b.h.Groups = []GroupPromise{{Group: "g", Delivery: DeliveryAtLeastOnce}}
	for i, timestamp := range []int64{1000, 1010, 1020} {
		b.h.Ops[i].Produce.Timestamp = timestamp
	}
	b.lookup(4, 90, 95, 1005, 1, 1010)
	// A send the broker refused as out of order, never stored: legal.
	b.produce(1, 96, 98, OutcomeFail, "e", -1).Error = ErrorOutOfOrderSequence
	return b
}

// TestBaselinePasses checks that a correct history passes every check and
// that the verdict line and per-check stats say so.
func TestBaselinePasses(t *testing.T) {
	r := mustCheck(t, &baseline().h)
	if want := "OK: 1 partitions, 11 ops, linearizable, 0 anomalies"; r.Verdict != want {
		t.Errorf("verdict %q, want %q", r.Verdict, want)
	}
	if len(r.Checks) != 1+len(deliveryChecks) {
		t.Fatalf("%d check stats, want %d", len(r.Checks), 1+len(deliveryChecks))
	}
	for _, c := range r.Checks {
		if c.Checked == 0 {
			t.Errorf("check %s examined nothing in the baseline", c.Name)
		}
	}
	if len(r.Partitions) != 1 || r.Partitions[0].Verdict != LinearizableOK || r.Partitions[0].Linearized != 6 {
		t.Errorf("partitions %+v, want one ok partition with 6 linearized ops", r.Partitions)
	}
}

// TestLostWrite drops an acknowledged durable write from the drain and
// expects a lost write; the same loss of a non-durable write passes.
func TestLostWrite(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 30, 40, OutcomeOK, "b", 1)
	b.drain(100, 0, rec(0, "a"))
	r := mustCheck(t, &b.h, AnomalyLostWrite)
	mentions(t, r.Anomalies[0], "op #1", `"b"`, "offset 1", "returned nothing")

	b.h.Ops[1].Produce.Durable = false
	mustCheck(t, &b.h)
}

// TestLossyAckOffsetReused acknowledges "b" at offset 1 without a promise
// of durability (acks=1 under power loss in durable mode): the power loss
// takes it, and "c" is then written at offset 1. The checker must accept
// that, and must still flag the same history when "b" was promised.
func TestLossyAckOffsetReused(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(1, 30, 40, OutcomeOK, "b", 1).Durable = false
	b.h.Ops[1].Produce.Acks = AcksLeader
	b.produce(0, 50, 60, OutcomeOK, "c", 1)
	b.drain(100, 0, rec(0, "a"), rec(1, "c"))
	b.end(2)
	mustCheck(t, &b.h)

	b.h.Ops[1].Produce.Durable = true
	mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset)
}

// TestLostWriteOverwritten replaces an acknowledged write in the drain by
// another value: it is lost, the offset is inconsistent, and no log explains
// the history.
func TestLostWriteOverwritten(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(1, 30, 40, OutcomeIndefinite, "x", 0)
	b.drain(100, 0, rec(0, "x"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset)
	mentions(t, r.Anomalies[1], `returned ["x"]`)
	mentions(t, r.Anomalies[2], "offset 0", `"a" (acknowledged to op #0`, `"x" (read by op #2`)
}

// TestInconsistentOffset has two readers see different values at one offset.
func TestInconsistentOffset(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeIndefinite, "a", 0)
	b.produce(1, 10, 20, OutcomeIndefinite, "b", 0)
	b.poll(2, 30, 40, 0, rec(0, "a"))
	b.poll(3, 30, 40, 0, rec(0, "b"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyInconsistentOffset)
	mentions(t, r.Anomalies[1], "offset 0 was observed with 2 values", "op #2", "op #3")
}

// TestDuplicate has an idempotent producer's value appear at two offsets,
// which fails; the same under a non-idempotent producer whose retry is
// recorded as a second indefinite attempt passes.
func TestDuplicate(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(1, 30, 40, OutcomeOK, "b", 1)
	b.poll(2, 50, 60, 0, rec(0, "a"), rec(1, "b"), rec(2, "a"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "a"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyDuplicate)
	mentions(t, r.Anomalies[1], `"a", sent once by idempotent producer 0`, "offsets 0 (op #0", "2 (op #2")

	retry := newBuilder()
	first := retry.produce(0, 10, 20, OutcomeIndefinite, "a", 0)
	first.Idempotent = false
	retry.produce(1, 30, 40, OutcomeOK, "b", 1)
	second := retry.produce(0, 21, 60, OutcomeOK, "a", 2)
	second.Idempotent, second.Seq = false, first.Seq
	retry.poll(2, 70, 80, 0, rec(0, "a"), rec(1, "b"), rec(2, "a"))
	retry.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "a"))
	mustCheck(t, &retry.h)
}

// TestNonmonotonicSend acknowledges an idempotent producer's later send at a
// lower offset than its earlier send.
func TestNonmonotonicSend(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 50, OutcomeOK, "a", 1)
	b.produce(0, 11, 50, OutcomeOK, "b", 0)
	b.drain(100, 0, rec(0, "b"), rec(1, "a"))
	r := mustCheck(t, &b.h, AnomalyNonmonotonicSend)
	mentions(t, r.Anomalies[0], `sent "b" (seq 1, op #1`, `after "a" (seq 0, op #0`, "offset 0, not above 1")

	// Without idempotence the producer may reorder (max.in.flight > 1).
	for i := range b.h.Ops {
		if p := b.h.Ops[i].Produce; p != nil {
			p.Idempotent = false
		}
	}
	mustCheck(t, &b.h)
}

// TestPollSkip has a consumer jump over an offset the drain holds, which
// fails; a jump over offsets the drain proves absent (control records)
// passes, and so does a jump after a seek.
func TestPollSkip(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1)
	b.produce(0, 31, 40, OutcomeOK, "c", 2)
	b.poll(2, 50, 60, 0, rec(0, "a"))
	b.poll(2, 61, 70, 1, rec(2, "c"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"))
	r := mustCheck(t, &b.h, AnomalyPollSkip)
	mentions(t, r.Anomalies[0], "op #4", "offset 2", "position was 1", "offsets 1..1")

	b.group(2, KindSeek, 60, 60, "", 2)
	b.h.Ops[4].Poll.FetchOffset = 2
	mustCheck(t, &b.h)

	// Offsets 1..2 hold control records: the drain reads through them and
	// returns none, and the consumer moves past them.
	gaps := newBuilder()
	gaps.produce(0, 10, 20, OutcomeOK, "a", 0)
	gaps.produce(0, 21, 30, OutcomeOK, "d", 3)
	gaps.poll(2, 50, 60, 0, rec(0, "a"))
	gaps.poll(2, 61, 70, 1, rec(3, "d"))
	gaps.drain(100, 0, rec(0, "a"), rec(3, "d"))
	mustCheck(t, &gaps.h)
}

// TestNonmonotonicPoll has a consumer read an offset again without a seek,
// which fails, and with a seek or a new session, which passes.
// TestRefusedRetry has an idempotent producer's send end with
// OUT_OF_ORDER_SEQUENCE_NUMBER while a poll reads its value: the broker
// refused a retry of a batch it held (as one that remembers only a
// producer's newest batch does). The same send without the read passes.
func TestRefusedRetry(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 11, 40, OutcomeIndefinite, "b", 1).Error = ErrorOutOfOrderSequence
	b.produce(0, 12, 30, OutcomeOK, "c", 2)
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"))
	r := mustCheck(t, &b.h, AnomalyRefusedRetry)
	mentions(t, r.Anomalies[0], `"b"`, "OUT_OF_ORDER_SEQUENCE_NUMBER", "offset 1")

	b.h.Ops[1].Produce.Error = ""
	mustCheck(t, &b.h)

	// In a cluster the refusal may have come from a deposed leader that
	// never had the batch (sim seed 1701217). It is judged only when the
	// refusing broker's epoch is known and the batch was appended in it or
	// before.
	b.h.Ops[1].Produce.Error = ErrorOutOfOrderSequence
	b.h.Replication = &Replication{}
	mustCheck(t, &b.h)
	epoch := int32(1)
	b.h.Ops[1].Produce.ErrorLeaderEpoch = &epoch
	drain := b.h.Ops[len(b.h.Ops)-1].Poll
	drain.Records[1].LeaderEpoch = 1
	mustCheck(t, &b.h, AnomalyRefusedRetry)
	drain.Records[1].LeaderEpoch = 2
	mustCheck(t, &b.h)
}

// TestPollBelowFetchOffset has a consumer fetch from offset 1 and return
// the record at offset 0 too, as a consumer that keeps a whole batch after
// a seek into its middle would: a consumer never returns records below its
// position.
func TestPollBelowFetchOffset(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1)
	b.poll(2, 50, 60, 1, rec(0, "a"), rec(1, "b"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"))
	r := mustCheck(t, &b.h, AnomalyNonmonotonicPoll)
	mentions(t, r.Anomalies[0], "op #2", "offset 0", "below the offset 1 it fetched from")

	b.h.Ops[2].Poll.Records = b.h.Ops[2].Poll.Records[1:]
	mustCheck(t, &b.h)
}

func TestNonmonotonicPoll(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1)
	b.poll(2, 50, 60, 0, rec(0, "a"), rec(1, "b"))
	b.poll(2, 61, 70, 1, rec(1, "b"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"))
	r := mustCheck(t, &b.h, AnomalyNonmonotonicPoll)
	mentions(t, r.Anomalies[0], "op #3", "offset 1", "by op #2")

	restarted := newBuilder()
	restarted.h.Ops = slices.Clone(b.h.Ops)
	restarted.h.Ops[3].Process = 1
	mustCheck(t, &restarted.h)

	b.group(2, KindSeek, 60, 61, "", 1)
	mustCheck(t, &b.h)
}

// TestBackwardCommit commits a lower offset after a higher one returned,
// which fails; with a seek in between, or with overlapping commits, it
// passes. A committed-offset read that sees nothing after a commit also
// fails (and is a lost commit, see TestCommittedReads).
func TestBackwardCommit(t *testing.T) {
	b := newBuilder()
	b.group(0, KindCommit, 10, 20, "g", 5)
	b.group(1, KindCommit, 30, 40, "g", 3)
	r := mustCheck(t, &b.h, AnomalyBackwardCommit)
	mentions(t, r.Anomalies[0], "group g", "op #1 (client 1) committed 3", "op #0 (client 0) had committed 5")

	seek := newBuilder()
	seek.h.Ops = slices.Clone(b.h.Ops)
	seek.group(1, KindSeek, 25, 25, "g", 3)
	mustCheck(t, &seek.h)

	concurrent := newBuilder()
	concurrent.group(0, KindCommit, 10, 35, "g", 5)
	concurrent.group(1, KindCommit, 30, 40, "g", 3)
	mustCheck(t, &concurrent.h)

	forgotten := newBuilder()
	forgotten.group(0, KindCommit, 10, 20, "g", 5)
	forgotten.group(1, KindFetchCommitted, 30, 40, "g", -1)
	r = mustCheck(t, &forgotten.h, AnomalyBackwardCommit, AnomalyLostCommit)
	mentions(t, r.Anomalies[0], "read back committed offset -1")
}

// TestPhantomRead reads a value that nobody produced: no log explains it.
func TestPhantomRead(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.poll(2, 30, 40, 0, rec(0, "a"), rec(1, "ghost"))
	b.drain(100, 0, rec(0, "a"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyPhantomRead)
	mentions(t, r.Anomalies[0], "op #1", `read "ghost" at offset 1, but no write can have put it there: no operation produced "ghost" in t-0`)
	mentions(t, r.Anomalies[1], `read "ghost" at offset 1, but no operation produced`)
}

// TestFailedWriteRead reads a value whose produce failed definitely.
func TestFailedWriteRead(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeFail, "a", 0)
	b.poll(2, 30, 40, 0, rec(0, "a"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable, AnomalyFailedWriteRead)
	mentions(t, r.Anomalies[1], `op #1 (client 2) read "a" at offset 0, but its only produce, op #0 (client 0), failed definitely`)
}

// TestIndefiniteExplainsRead reads beyond every acknowledged write, and past
// the return of the indefinite produce that wrote it: the indefinite
// produce may take effect late, so the history passes. Reading it before
// the produce was even called fails.
func TestIndefiniteExplainsRead(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(1, 21, 25, OutcomeIndefinite, "b", 0)
	b.produce(0, 60, 70, OutcomeOK, "c", 2)
	b.poll(2, 50, 55, 0, rec(0, "a"), rec(1, "b"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"))
	mustCheck(t, &b.h)

	b.h.Ops[1].Call, b.h.Ops[1].Return = 56, 58
	r := mustCheck(t, &b.h, AnomalyNonlinearizable)
	mentions(t, r.Anomalies[0], `op #3 (client 2) read offset 1 ("b") and returned at time 55, before op #1 (client 1), which wrote "b" at offset 1, was called at time 56`)
}

// TestIndefiniteNeverSeen leaves an indefinite and an acks=0 produce unread:
// they took no observable effect, which is allowed.
func TestIndefiniteNeverSeen(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeIndefinite, "lost", 0)
	b.produce(1, 10, 20, OutcomeOK, "fire-and-forget", 0).Acks = AcksNone
	b.h.Ops[1].Produce.Durable = false
	b.produce(0, 30, 40, OutcomeOK, "a", 0)
	b.drain(100, 0, rec(0, "a"))
	b.end(1)
	mustCheck(t, &b.h)
}

// TestAckOrderAgainstRealTime acknowledges a later write at a lower offset
// than an earlier, completed write of another producer: no single log has
// that order.
func TestAckOrderAgainstRealTime(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 1)
	b.produce(1, 30, 40, OutcomeOK, "b", 0)
	b.drain(100, 0, rec(0, "b"), rec(1, "a"))
	r := mustCheck(t, &b.h, AnomalyNonlinearizable)
	mentions(t, r.Anomalies[0], `op #0 (client 0) was acknowledged at offset 1 for "a" and returned at time 20, before op #1 (client 1), which wrote "b" at offset 0, was called at time 30`)
	if got := r.Anomalies[0].Ops; !slices.Equal(got, []int{0, 1}) {
		t.Errorf("witnesses %v, want [0 1]", got)
	}
}

// TestIncompleteDrain stops the drain short of the end offset, and leaves
// another partition with durable writes undrained.
func TestIncompleteDrain(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1).Durable = false
	b.drain(100, 0, rec(0, "a"))
	b.end(2)
	b.produce(0, 31, 40, OutcomeOK, "z", 0)
	b.h.Ops[len(b.h.Ops)-1].Partition = 1
	// An empty partition needs no drain.
	b.h.Ends = append(b.h.Ends, End{Topic: "t", Partition: 2, Offset: 0})
	r := mustCheck(t, &b.h, AnomalyIncompleteDrain, AnomalyIncompleteDrain)
	mentions(t, r.Anomalies[0], "reached offset 1, short of the end offset 2")
	mentions(t, r.Anomalies[1], "1 durable acknowledged writes but was never drained")
	if r.Anomalies[1].Partition.String() != "t-1" {
		t.Errorf("second anomaly on %s, want t-1", r.Anomalies[1].Partition)
	}
}

// TestVerdictCountsKinds checks the FAIL line counts anomalies per kind in
// report order.
func TestVerdictCountsKinds(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1)
	b.drain(100, 0)
	r := mustCheck(t, &b.h, AnomalyLostWrite, AnomalyLostWrite)
	if want := "FAIL: lost-write x2"; r.Verdict != want {
		t.Errorf("verdict %q, want %q", r.Verdict, want)
	}
}

// TestUnknownIsNotPass gives porcupine a step budget too small to finish and
// expects an Unknown verdict, never OK.
func TestUnknownIsNotPass(t *testing.T) {
	h := baseline().h
	r := Check(&h, Options{Method: MethodPorcupine, LinearizabilityStepsMax: 2})
	if r.Status != StatusUnknown || !strings.HasPrefix(r.Verdict, "UNKNOWN: ") || !strings.Contains(r.Verdict, "t-0") {
		t.Fatalf("status %s, verdict %q; want unknown naming t-0", r.Status, r.Verdict)
	}
	if r.Partitions[0].Verdict != LinearizableUnknown {
		t.Errorf("partition verdict %s, want unknown", r.Partitions[0].Verdict)
	}
}

// TestCheckIsDeterministic checks a generated multi-partition history with
// anomalies twice and compares the full reports byte for byte.
func TestCheckIsDeterministic(t *testing.T) {
	h := benchHistory(2000, 4, 7)
	h.Ops[len(h.Ops)/2].Outcome = OutcomeFail // make something go wrong
	for i := range h.Ops {
		if p := h.Ops[i].Poll; p != nil && len(p.Records) > 1 && !p.Final {
			p.Records[0], p.Records[1] = p.Records[1], p.Records[0]
		}
	}
	first := Check(&h, Options{})
	second := Check(&h, Options{})
	if first.Status != StatusFail {
		t.Fatalf("status %s, want fail", first.Status)
	}
	if first.Report() != second.Report() {
		t.Fatalf("two checks of one history differ:\n%s\n---\n%s", first.Report(), second.Report())
	}
}

// TestSingleChecksMatchCheck runs each exported check alone on a failing
// history and expects exactly the anomalies Check attributes to it.
func TestSingleChecksMatchCheck(t *testing.T) {
	h := benchHistory(1000, 2, 3)
	h.Ops = append(h.Ops, Op{Client: 0, Kind: KindPoll, Call: 1, Return: 2, Outcome: OutcomeOK, Topic: "t", Poll: &Poll{Records: []Record{rec(0, "ghost")}}})
	all := Check(&h, Options{})
	var singles []Anomaly
	lin, _, err := Linearizable(&h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	singles = append(singles, lin...)
	for _, f := range []func(*History) ([]Anomaly, error){LostWrites, InconsistentOffsets, Duplicates, UnexpectedReads, ProducerOrder, PollOrder, CommitOrder, Drains} {
		anomalies, err := f(&h)
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, anomalies...)
	}
	sortAnomalies(singles)
	if len(singles) == 0 || !slices.EqualFunc(singles, all.Anomalies, func(a, b Anomaly) bool { return a.String() == b.String() }) {
		t.Fatalf("single checks found %v\nCheck found %v", singles, all.Anomalies)
	}
}
