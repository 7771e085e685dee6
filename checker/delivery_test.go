package checker

import "testing"

// deliveryHistory is a group "g" of two members over one partition holding
// offsets 0..3: member 2 processes 0..1 and commits 2, member 3 takes over
// (a rebalance) and processes 2..3 and commits 4.
func deliveryHistory(delivery string) *builder {
	b := newBuilder()
	for i, v := range []string{"a", "b", "c", "d"} {
		b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
	}
	b.poll(2, 20, 21, 0, rec(0, "a"), rec(1, "b")).Group = "g"
	b.group(2, KindCommit, 22, 23, "g", 2)
	p := b.poll(3, 30, 31, 2, rec(2, "c"), rec(3, "d"))
	p.Group, p.Reset = "g", true
	b.group(3, KindCommit, 32, 33, "g", 4)
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"))
	b.end(4)
	b.h.Groups = []GroupPromise{{Group: "g", Delivery: delivery}}
	return b
}

// TestDeliveryPromisesHold checks that a clean hand-over between members
// keeps both promises.
func TestDeliveryPromisesHold(t *testing.T) {
	mustCheck(t, &deliveryHistory(DeliveryAtLeastOnce).h)
	mustCheck(t, &deliveryHistory(DeliveryAtMostOnce).h)
}

// TestAtLeastOnceUnprocessed makes the second member start past offset 2
// although only offset 2 was committed: offset 2 was never processed but
// lies below the group's final commit.
func TestAtLeastOnceUnprocessed(t *testing.T) {
	b := deliveryHistory(DeliveryAtLeastOnce)
	b.h.Ops[6].Poll.FetchOffset = 3
	b.h.Ops[6].Poll.Records = []Record{rec(3, "d")}
	r := mustCheck(t, &b.h, AnomalyUnprocessed)
	mentions(t, r.Anomalies[0], `group "g"`, "offset 2", `"c"`, "committed offset 4")

	// The same history is fine for an at-most-once group.
	b.h.Groups[0].Delivery = DeliveryAtMostOnce
	mustCheck(t, &b.h)
}

// TestAtMostOnceReprocessed makes the second member process offset 1
// again: the group promised at-most-once.
func TestAtMostOnceReprocessed(t *testing.T) {
	b := deliveryHistory(DeliveryAtMostOnce)
	b.h.Ops[6].Poll.FetchOffset = 1
	b.h.Ops[6].Poll.Records = []Record{rec(1, "b"), rec(2, "c"), rec(3, "d")}
	r := mustCheck(t, &b.h, AnomalyReprocessed)
	mentions(t, r.Anomalies[0], `group "g"`, "offset 1", "op #4", "op #6")

	// Reprocessing is allowed at-least-once.
	b.h.Groups[0].Delivery = DeliveryAtLeastOnce
	mustCheck(t, &b.h)
}

// TestGroupPromiseValidation rejects unknown promises and repeated groups.
func TestGroupPromiseValidation(t *testing.T) {
	b := deliveryHistory("exactly-twice")
	if err := b.h.Validate(); err == nil {
		t.Fatal("unknown promise accepted")
	}
	b = deliveryHistory(DeliveryAtMostOnce)
	b.h.Groups = append(b.h.Groups, b.h.Groups[0])
	if err := b.h.Validate(); err == nil {
		t.Fatal("repeated group accepted")
	}
}

// TestAtLeastOnceExcusesRetention: the group skipped offset 2. Where
// retention may have deleted it (the drain starts at 3, and
// retention.bytes lets the log keep a single record), retention, not the
// group, broke the promise. Where the drain shows offset 2 and nothing may
// be deleted, the group left it unprocessed.
func TestAtLeastOnceExcusesRetention(t *testing.T) {
	b := deliveryHistory(DeliveryAtLeastOnce)
	b.h.Ops[6].Poll.FetchOffset = 3
	b.h.Ops[6].Poll.Records = []Record{rec(3, "d")}
	mustCheck(t, &b.h, AnomalyUnprocessed)

	b.h.Ops[8].Poll.FetchOffset = 3
	b.h.Ops[8].Poll.Records = []Record{rec(3, "d")}
	b.h.Retention = &Retention{Bytes: 1, RecordBytesMax: 150}
	mustCheck(t, &b.h)
}
