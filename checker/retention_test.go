package checker

import "testing"

// retentionHistory: offsets 0..4 acknowledged, each alone in a batch of 100
// bytes; the log was later cut so that the drain reads from drainFrom. A
// consumer read 0 and then, after its position fell below the log start,
// jumped to 3.
func retentionHistory(drainFrom int64, retention *Retention) *builder {
	b := newBuilder()
	values := []string{"a", "b", "c", "d", "e"}
	for i, v := range values {
		p := b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
		p.BatchBytes, p.BatchRecords = 100, 1
	}
	b.poll(2, 20, 21, 0, rec(0, "a"))
	b.poll(2, 30, 31, 1, rec(3, "d"))
	var drained []Record
	for o := drainFrom; o < int64(len(values)); o++ {
		drained = append(drained, rec(o, values[o]))
	}
	b.drain(100, drainFrom, drained...)
	b.h.Ends = []End{{Topic: "t", Offset: 5, Start: drainFrom}}
	b.h.Retention = retention
	return b
}

func sizeRetention(bytes int64) *Retention {
	return &Retention{Bytes: bytes, RecordBytesMax: 150}
}

// TestLegalLogStart derives the legal log start from the retention
// settings and the recorded batch sizes, never from the broker's reported
// start (End.Start, which equals the drain's start in every case here).
func TestLegalLogStart(t *testing.T) {
	tests := []struct {
		name      string
		drainFrom int64
		retention *Retention
		want      []AnomalyKind
		mention   string
	}{
		{"retention kept exactly its bytes", 3, sizeRetention(200), nil, ""},
		{"retention kept less than its bytes", 3, sizeRetention(300),
			[]AnomalyKind{AnomalyLostWrite, AnomalyPollSkip, AnomalyPrematureDeletion},
			"holds at most 200 bytes, fewer than log.retention.bytes 300, so retention had to keep every offset from 2 on"},
		{"no retention at all", 3, nil,
			[]AnomalyKind{AnomalyLostWrite, AnomalyLostWrite, AnomalyLostWrite, AnomalyPollSkip, AnomalyPrematureDeletion},
			"no retention may delete anything: offsets 0..2 were deleted early"},
		{"size retention off", 3, &Retention{Bytes: -1, RecordBytesMax: 150},
			[]AnomalyKind{AnomalyLostWrite, AnomalyLostWrite, AnomalyLostWrite, AnomalyPollSkip, AnomalyPrematureDeletion}, ""},
		{"time retention may act", 3, &Retention{Bytes: 10_000, TimeCanAct: true, RecordBytesMax: 150}, nil, ""},
		{"nothing deleted", 0, nil, []AnomalyKind{AnomalyPollSkip}, ""},
		{"a kept offset skipped", 2, sizeRetention(300), []AnomalyKind{AnomalyPollSkip}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := retentionHistory(tt.drainFrom, tt.retention)
			r := mustCheck(t, &b.h, tt.want...)
			if tt.mention != "" {
				mentions(t, r.Anomalies[len(r.Anomalies)-1], tt.mention, "the broker reported log start 3")
			}
		})
	}
}

// TestLegalLogStartWithTailLoss: a write that may have been in the log and
// was lost from its tail (an indefinite send missing from the drain) may
// have counted when retention last acted, so the same cut is legal once a
// fault can take a tail away, and only then.
func TestLegalLogStartWithTailLoss(t *testing.T) {
	retention := sizeRetention(300)
	b := retentionHistory(3, retention)
	p := b.produce(1, 40, 50, OutcomeIndefinite, "lost", -1)
	p.BatchBytes, p.BatchRecords = 100, 1
	mustCheck(t, &b.h, AnomalyLostWrite, AnomalyPollSkip, AnomalyPrematureDeletion)
	retention.TailLoss = true
	mustCheck(t, &b.h)
}

// TestTailLossCountsWhenTheDrainMakesTheBytes: the drain alone holds more
// than log.retention.bytes, and a write that may have been in the log was
// lost from its tail. Retention may have acted before the loss, when that
// write counted, so the legal start is higher than the drain alone gives
// (sim seed 1401836: a consumer reset past offsets a leader had deleted,
// which a later leader that missed the retention still held).
func TestTailLossCountsWhenTheDrainMakesTheBytes(t *testing.T) {
	retention := sizeRetention(400)
	b := retentionHistory(0, retention)
	p := b.produce(1, 40, 50, OutcomeIndefinite, "lost", -1)
	p.BatchBytes, p.BatchRecords = 200, 1
	mustCheck(t, &b.h, AnomalyPollSkip)
	retention.TailLoss = true
	mustCheck(t, &b.h)
}

// TestWriteBeyondTheDrainCounts is sim seed 403980 in small: retention
// (300 bytes) moved the start to 3 while the log also held "f", an acks=1
// write acknowledged at offset 5, the end the drain read to, which became
// durable only after the drain had read that end. f's bytes counted for
// retention, so the consumer's jump from 1 to 3 is no skip.
func TestWriteBeyondTheDrainCounts(t *testing.T) {
	b := retentionHistory(0, sizeRetention(300))
	mustCheck(t, &b.h, AnomalyPollSkip)
	f := b.produce(1, 40, 50, OutcomeOK, "f", 5)
	f.BatchBytes, f.BatchRecords = 100, 1
	f.Acks, f.Durable = AcksLeader, false
	mustCheck(t, &b.h)
}

// TestLegalLogStartWithoutBatchSizes bounds records without a recorded
// batch by RecordBytesMax: 2 x 150 bytes cover 300.
func TestLegalLogStartWithoutBatchSizes(t *testing.T) {
	b := retentionHistory(3, sizeRetention(300))
	for i := range b.h.Ops {
		if p := b.h.Ops[i].Produce; p != nil {
			p.BatchBytes, p.BatchRecords = 0, 0
		}
	}
	mustCheck(t, &b.h)
}

// TestEndStartValidation rejects a log start beyond the end and retention
// settings that bound nothing.
func TestEndStartValidation(t *testing.T) {
	b := retentionHistory(3, sizeRetention(200))
	b.h.Ends[0].Start = 6
	if err := b.h.Validate(); err == nil {
		t.Fatal("log start beyond the end accepted")
	}
	b = retentionHistory(3, &Retention{Bytes: 200})
	if err := b.h.Validate(); err == nil {
		t.Fatal("retention without a record bound accepted")
	}
}

// TestDeletionWhileDraining: retention deleted offsets 2 and 3 while the
// drain was reading (it read 0 and 1, then went on at 4). That was legal
// if the four drained records of 100 bytes still make retention.bytes
// from offset 4 on, and only then: no tail loss follows a deletion after
// healing, so no slack is allowed.
func TestDeletionWhileDraining(t *testing.T) {
	build := func(retention *Retention) *builder {
		b := newBuilder()
		values := []string{"a", "b", "c", "d", "e", "f"}
		for i, v := range values {
			p := b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
			p.BatchBytes, p.BatchRecords = 100, 1
		}
		b.drain(100, 0, rec(0, "a"), rec(1, "b"))
		b.drain(102, 2, rec(4, "e"), rec(5, "f"))
		b.h.Ends = []End{{Topic: "t", Offset: 6}}
		b.h.Retention = retention
		return b
	}
	mustCheck(t, &build(sizeRetention(200)).h)
	tailLoss := sizeRetention(300)
	tailLoss.TailLoss = true
	r := mustCheck(t, &build(tailLoss).h, AnomalyLostWrite, AnomalyLostWrite)
	mentions(t, r.Anomalies[0], "offset 2")
	mustCheck(t, &build(nil).h, AnomalyLostWrite, AnomalyLostWrite)
}

// TestDrainPastStaleEnd is sim seed 20256 in small. The end observed after
// healing was a new leader's high watermark, still held at its epoch's
// start, while its log held offsets 0..5 (acks=1 writes of 100 bytes
// each); the drain read on past that end, and retention then cut the log
// before an at-least-once group member, with nothing committed, came back
// and started at the new log start. The cut was legal where what it kept
// makes retention.bytes, each drained record counted once, also those
// past the stale end, plus the acknowledged writes the drain did not
// reach: records below a legal cut are excused, those at or above it must
// have been processed.
func TestDrainPastStaleEnd(t *testing.T) {
	tests := []struct {
		name           string
		end, drainTo   int64
		restart        int64
		retentionBytes int64
		want           []AnomalyKind
	}{
		{"the cut kept retention.bytes", 2, 6, 4, 200, nil},
		{"the cut kept too little", 2, 6, 4, 300, []AnomalyKind{AnomalyUnprocessed}},
		{"records past the end count once", 4, 6, 5, 300, []AnomalyKind{AnomalyUnprocessed, AnomalyUnprocessed}},
		{"writes past the drain count too", 2, 4, 4, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			values := []string{"a", "b", "c", "d", "e", "f"}
			for i, v := range values {
				p := b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
				p.BatchBytes, p.BatchRecords = 100, 1
				p.Acks, p.Durable = AcksLeader, false
			}
			b.poll(2, 20, 21, 0, rec(0, "a")).Group = "g"
			b.drain(100, 0, records(values, 0, tt.drainTo)...)
			p := b.poll(3, 200, 201, tt.restart, records(values, tt.restart, int64(len(values)))...)
			p.Group, p.Reset = "g", true
			b.group(3, KindCommit, 202, 203, "g", int64(len(values)))
			b.end(tt.end)
			b.h.Groups = []GroupPromise{{Group: "g", Delivery: DeliveryAtLeastOnce}}
			b.h.Retention = sizeRetention(tt.retentionBytes)
			r := mustCheck(t, &b.h, tt.want...)
			if len(tt.want) > 0 {
				mentions(t, r.Anomalies[0], "offset 3", `"d"`)
			}
		})
	}
}

// records returns the records at offsets from..to-1, offset i holding
// values[i].
func records(values []string, from, to int64) []Record {
	var out []Record
	for o := from; o < to; o++ {
		out = append(out, rec(o, values[o]))
	}
	return out
}

// TestOutOfRangeResetJudgedAtItsTime: a consumer read offset 0, was
// refused offset 1 as out of range and reset to the log start, offset 3.
// With log.retention.bytes 300, starting the log at offset 3 needed 300
// bytes at or above it by then. The final drain holds all seven records (a
// replica that missed the retention led later), whose 700 bytes would
// excuse the jump at any time; judged at the poll's return, the jump is
// legal only if the writes at offsets 5 and 6 were sent before it (sim
// seed 1401836's kind of history, and the planted bug
// retention-counts-uncommitted).
func TestOutOfRangeResetJudgedAtItsTime(t *testing.T) {
	history := func(lateWritesAt int64) *History {
		b := newBuilder()
		values := []string{"a", "b", "c", "d", "e", "f", "g"}
		for i, v := range values {
			call := int64(10 + i)
			if i >= 5 {
				call = lateWritesAt + int64(i)
			}
			p := b.produce(0, call, call+1, OutcomeOK, v, int64(i))
			p.BatchBytes, p.BatchRecords = 100, 1
		}
		b.poll(2, 20, 21, 0, rec(0, "a"))
		reset := b.poll(2, 30, 31, 1, rec(3, "d"))
		reset.Reset, reset.OutOfRange = true, true
		var drained []Record
		for i, v := range values {
			drained = append(drained, rec(int64(i), v))
		}
		b.drain(100, 0, drained...)
		b.h.Ends = []End{{Topic: "t", Offset: int64(len(values))}}
		b.h.Retention = sizeRetention(300)
		return &b.h
	}
	mustCheck(t, history(20))
	r := mustCheck(t, history(40), AnomalyPrematureDeletion)
	mentions(t, r.Anomalies[0], "refused offset 1 as out of range and reset to offset 3",
		"at most 200 bytes had been written at or above offset 3, fewer than log.retention.bytes 300")
}

// TestUncleanElectionExcusesTheLogStart: retention started the log at
// offset 3 while it held enough, then an allowed unclean election lost
// offsets 3 and 4, which retention had counted, so the drained log starts
// at 3 with little left (sim seed 1800732). Without the election that is
// a premature deletion; with it, nothing below the drain is judged.
func TestUncleanElectionExcusesTheLogStart(t *testing.T) {
	b := retentionHistory(3, sizeRetention(300))
	mustCheck(t, &b.h, AnomalyLostWrite, AnomalyPollSkip, AnomalyPrematureDeletion)
	b.h.Replication = &Replication{
		UncleanTopics:    []string{"t"},
		UncleanElections: []UncleanElection{{Topic: "t", Partition: 0, Offset: 42, Leader: 3, LeaderEpoch: 4, Time: 60, SettledAt: 1000}},
	}
	mustCheck(t, &b.h)
}
