package checker

import (
	"slices"
	"testing"
)

// timedLog is a correct history of four durable acknowledged records with
// timestamps 1000, 1010, 1010 and 1020 at offsets 0 to 3 (the second and
// third sent together, as one batch would carry them), read by a poll
// that returned before any lookup, and drained. Lookups are added by each
// case.
func timedLog() *builder {
	b := newBuilder()
	for i, timestamp := range []int64{1000, 1010, 1010, 1020} {
		value := string(rune('a' + i))
		b.produce(0, int64(10+i), int64(20+i), OutcomeOK, value, int64(i)).Timestamp = timestamp
	}
	b.poll(1, 30, 30, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"))
	b.drain(200, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"))
	b.end(4)
	return b
}

// TestTimeLookups checks each rule of the time-lookup check (KIP-79: the
// first record at or after the target, with its own timestamp, or -1 when
// none): a wrong answer is reported with the witness that disproves it,
// and answers the history cannot disprove pass.
func TestTimeLookups(t *testing.T) {
	tests := []struct {
		name string
		// edit changes the history built by timedLog.
		edit func(b *builder)
		// wantOffset is the offset the anomaly names, or -2 for none.
		wantOffset int64
		wantOps    []int
		// judgedElsewhere is set when other checks reject the history,
		// so only this check's verdict is compared.
		judgedElsewhere bool
	}{
		{name: "exact record", edit: func(b *builder) { b.lookup(2, 40, 45, 1005, 1, 1010) }, wantOffset: -2},
		{name: "target equals a timestamp", edit: func(b *builder) { b.lookup(2, 40, 45, 1020, 3, 1020) }, wantOffset: -2},
		{name: "target before every record", edit: func(b *builder) { b.lookup(2, 40, 45, 5, 0, 1000) }, wantOffset: -2},
		{name: "none after the last record", edit: func(b *builder) { b.lookup(2, 40, 45, 1021, -1, -1) }, wantOffset: -2},
		{name: "timestamp before the target", edit: func(b *builder) { b.lookup(2, 40, 45, 1015, 3, 1010) }, wantOffset: 3, wantOps: []int{6}},
		{
			// The old behaviour: the batch's base offset with its max
			// timestamp (batch [0, 2] holding 1000, 1010, 1010).
			name: "batch base offset", edit: func(b *builder) { b.lookup(2, 40, 45, 1005, 0, 1010) },
			wantOffset: 0, wantOps: []int{6, 0},
		},
		{name: "a later record of the same time", edit: func(b *builder) { b.lookup(2, 40, 45, 1005, 2, 1010) }, wantOffset: 1, wantOps: []int{6, 1}},
		{name: "none although a record qualifies", edit: func(b *builder) { b.lookup(2, 40, 45, 1015, -1, -1) }, wantOffset: 3, wantOps: []int{6, 3}},
		{
			// In a cluster a deposed leader may answer on a stale high
			// watermark (sim seed 101572): "none" is not judged there.
			name: "none from a cluster, where a zombie may answer",
			edit: func(b *builder) {
				b.h.Replication = &Replication{Nodes: []ReplicaNode{{Node: 1}, {Node: 2}, {Node: 3}}}
				b.lookup(2, 40, 45, 1015, -1, -1)
			},
			wantOffset: -2, judgedElsewhere: true,
		},
		{
			name: "a wrong record from a cluster is still wrong",
			edit: func(b *builder) {
				b.h.Replication = &Replication{Nodes: []ReplicaNode{{Node: 1}, {Node: 2}, {Node: 3}}}
				b.lookup(2, 40, 45, 1005, 0, 1010)
			},
			wantOffset: 0, wantOps: []int{6, 0}, judgedElsewhere: true,
		},
		{
			// The qualifying record was acknowledged only after the lookup
			// began: the lookup may have run before it was written.
			name: "none before the qualifying ack",
			edit: func(b *builder) {
				b.h.Ops[3].Return = 50
				b.lookup(2, 40, 45, 1015, -1, -1)
			},
			wantOffset: -2,
		},
		{
			// acks=1 says nothing of the high watermark, and no poll read
			// the record before the lookup: it may not have been committed.
			name: "none while the qualifying record may be above the high watermark",
			edit: func(b *builder) {
				b.h.Ops[3].Produce.Acks = AcksLeader
				b.h.Ops[4].Poll.Records = b.h.Ops[4].Poll.Records[:3]
				b.lookup(2, 40, 45, 1015, -1, -1)
			},
			wantOffset: -2,
		},
		{
			name: "none while a poll showed the qualifying acks=1 record committed",
			edit: func(b *builder) {
				b.h.Ops[3].Produce.Acks = AcksLeader
				b.lookup(2, 40, 45, 1015, -1, -1)
			},
			wantOffset: 3, wantOps: []int{6, 3},
		},
		{
			name: "none while the qualifying record is not durable",
			edit: func(b *builder) {
				b.h.Ops[3].Produce.Durable = false
				b.lookup(2, 40, 45, 1015, -1, -1)
			},
			wantOffset: -2,
		},
		{
			// A poll's timestamp is evidence too: the record at offset 0
			// was read with timestamp 1000 although its produce did not
			// record one.
			name: "batch base offset shown by a poll",
			edit: func(b *builder) {
				b.h.Ops[0].Produce.Timestamp = 0
				b.h.Ops[4].Poll.Records[0].Timestamp = 1000
				b.lookup(2, 40, 45, 1005, 0, 1010)
			},
			wantOffset: 0, wantOps: []int{6, 4},
		},
		{
			// A record sent after the lookup returned cannot have been in
			// the log then; its offset must have been rewritten (which the
			// linearizability check reports).
			name: "earlier record sent after the lookup",
			edit: func(b *builder) {
				b.h.Ops[1].Call, b.h.Ops[1].Return = 50, 60
				b.lookup(2, 40, 45, 1005, 2, 1010)
			},
			wantOffset: -2, judgedElsewhere: true,
		},
		{
			// Two values at one offset: a fault took the unpromised "b"
			// and "x" took its place, so which record the lookup saw
			// there is unknown.
			name: "rewritten offset",
			edit: func(b *builder) {
				b.h.Ops[1].Produce.Durable = false
				b.h.Ops[4].Poll.Records[1] = Record{Offset: 1, Value: "x", Timestamp: 990}
				b.h.Ops[5].Poll.Records[1] = Record{Offset: 1, Value: "x", Timestamp: 990}
				b.add(Op{Client: 3, Kind: KindProduce, Call: 5, Return: 60, Outcome: OutcomeIndefinite,
					Produce: &Produce{Value: "x", ProducerID: 3, Acks: AcksLeader, Offset: -1}})
				b.lookup(2, 40, 45, 1005, 2, 1010)
			},
			wantOffset: -2,
		},
		{
			// Below the legal log start retention may have deleted the
			// qualifying records before the lookup.
			name: "below the legal log start",
			edit: func(b *builder) {
				b.h.Retention = &Retention{Bytes: 0, TimeCanAct: true, RecordBytesMax: 100}
				b.h.Ops[5].Poll.Records = b.h.Ops[5].Poll.Records[3:]
				b.h.Ops[5].Poll.FetchOffset = 3
				b.lookup(2, 40, 45, 1005, 3, 1020)
			},
			wantOffset: -2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := timedLog()
			tt.edit(b)
			anomalies, err := TimeLookups(&b.h)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOffset == -2 {
				if len(anomalies) > 0 {
					t.Fatalf("unexpected anomalies %v\n%s", anomalies, b.h.Text())
				}
				if !tt.judgedElsewhere {
					mustCheck(t, &b.h)
				}
				return
			}
			if len(anomalies) != 1 {
				t.Fatalf("%d anomalies %v, want one\n%s", len(anomalies), anomalies, b.h.Text())
			}
			a := anomalies[0]
			if a.Kind != AnomalyWrongTimeLookup || a.Offset != tt.wantOffset || !slices.Equal(a.Ops, tt.wantOps) {
				t.Fatalf("got %s at offset %d ops %v, want offset %d ops %v", a, a.Offset, a.Ops, tt.wantOffset, tt.wantOps)
			}
			mustCheck(t, &b.h, AnomalyWrongTimeLookup)
		})
	}
}

// TestTimeLookupValidation checks that a lookup's answer must be a record
// or -1 for both offset and timestamp, and its target not negative.
func TestTimeLookupValidation(t *testing.T) {
	tests := []struct {
		name   string
		lookup Lookup
		valid  bool
	}{
		{name: "record", lookup: Lookup{Target: 5, Offset: 3, Timestamp: 7}, valid: true},
		{name: "none", lookup: Lookup{Target: 5, Offset: -1, Timestamp: -1}, valid: true},
		{name: "offset without timestamp", lookup: Lookup{Target: 5, Offset: 3, Timestamp: -1}},
		{name: "timestamp without offset", lookup: Lookup{Target: 5, Offset: -1, Timestamp: 7}},
		{name: "negative target", lookup: Lookup{Target: -1, Offset: 3, Timestamp: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			l := b.lookup(0, 1, 2, 0, 0, 0)
			*l = tt.lookup
			if err := b.h.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}

// TestTimeLookupText pins how History.Text shows timestamps and lookups,
// as docs/checker.md quotes it.
func TestTimeLookupText(t *testing.T) {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0).Timestamp = 1000
	b.poll(1, 30, 30, 0, Record{Offset: 0, Value: "a", Timestamp: 1000})
	b.lookup(2, 50, 55, 995, 0, 1000)
	b.add(Op{Client: 2, Kind: KindTimeLookup, Call: 60, Return: 61, Outcome: OutcomeFail, Lookup: &Lookup{Target: 7, Offset: -1, Timestamp: -1}})
	want := `#0 c0/s0 [10,20] produce t-0 ok "a" pid=0 idem acks=all seq=0 durable ts=1000 @0
#1 c1/s0 [30,30] poll t-0 ok from=0 [0:"a"@1000]
#2 c2/s0 [50,55] time-lookup t-0 ok time=995 @0 ts=1000
#3 c2/s0 [60,61] time-lookup t-0 fail time=7
`
	if got := b.h.Text(); got != want {
		t.Fatalf("text:\n%s\nwant:\n%s", got, want)
	}
}

// TestTimeLookupAgainstTheLogStartThen: in a cluster a lookup answered
// offset 2, the first record of the leader's log then, although offset 1
// also qualifies and the final drain, from a replica that missed the
// retention, holds it. With log.retention.bytes 250 and the three records
// at offsets 2 to 4 (100 bytes each) sent before the lookup, retention
// could have started the log at 2 then; had only two of them been sent,
// it could not have (sim seed 1900443), on one broker as in a cluster.
func TestTimeLookupAgainstTheLogStartThen(t *testing.T) {
	history := func(lastSentAt int64, cluster bool) *History {
		b := newBuilder()
		for i, v := range []string{"a", "b", "c", "d", "e"} {
			call := int64(10 + i)
			if i == 4 {
				call = lastSentAt
			}
			p := b.produce(0, call, call+1, OutcomeOK, v, int64(i))
			p.Timestamp, p.BatchBytes, p.BatchRecords = 1000+int64(i), 100, 1
		}
		b.lookup(1, 50, 51, 1000, 2, 1002)
		b.drain(200, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"), rec(4, "e"))
		b.end(5)
		b.h.Retention = sizeRetention(250)
		if cluster {
			b.h.Replication = &Replication{}
		}
		return &b.h
	}
	mustCheck(t, history(20, true))
	mustCheck(t, history(60, true), AnomalyWrongTimeLookup)
	mustCheck(t, history(20, false))
	mustCheck(t, history(60, false), AnomalyWrongTimeLookup)
}
