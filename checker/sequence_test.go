package checker

import "testing"

// sequenced gives the last op of b the Kafka identity of producer 1000,
// epoch 0, with sequence seq.
func sequenced(b *builder, seq int32) {
	b.h.Ops[len(b.h.Ops)-1].Produce.Sequence = &SequenceNumber{ProducerID: 1000, Epoch: 0, Sequence: seq}
}

// gapHistory: a producer sends a (sequence 0), b (1) and c (2). a and c are
// acknowledged at offsets 0 and 1; b timed out. drained lists what the final
// drain returns.
func gapHistory(drained ...Record) *builder {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	sequenced(b, 0)
	b.produce(0, 21, 60, OutcomeIndefinite, "b", -1)
	sequenced(b, 1)
	b.produce(0, 22, 40, OutcomeOK, "c", drained[len(drained)-1].Offset)
	sequenced(b, 2)
	b.drain(100, 0, drained...)
	b.end(drained[len(drained)-1].Offset + 1)
	return b
}

func TestSequenceGap(t *testing.T) {
	tests := []struct {
		name  string
		build func() *builder
		want  []AnomalyKind
	}{
		{"predecessor in the log", func() *builder {
			return gapHistory(rec(0, "a"), rec(1, "b"), rec(2, "c"))
		}, nil},
		{"predecessor missing", func() *builder {
			return gapHistory(rec(0, "a"), rec(1, "c"))
		}, []AnomalyKind{AnomalySequenceGap}},
		{"predecessor acknowledged elsewhere", func() *builder {
			b := gapHistory(rec(0, "a"), rec(1, "c"))
			b.h.Ops[1].Outcome = OutcomeFail
			return b
		}, []AnomalyKind{AnomalySequenceGap}},
		{"no earlier record acknowledged: the broker may not know the producer", func() *builder {
			b := gapHistory(rec(0, "a"), rec(1, "c"))
			b.h.Ops[0].Outcome = OutcomeIndefinite
			return b
		}, nil},
		{"predecessor's batch damaged at rest, the partition unreadable from there (sim seed 593)", func() *builder {
			b := newBuilder()
			b.produce(0, 10, 20, OutcomeOK, "a", 0)
			sequenced(b, 0)
			b.produce(0, 21, 30, OutcomeOK, "b", 1)
			sequenced(b, 1)
			b.produce(0, 31, 40, OutcomeOK, "c", 2)
			sequenced(b, 2)
			b.h.Damage = []Damage{{Topic: "t", FirstOffset: 1, LastOffset: 1, Kind: DamageCorruption, At: 50}}
			b.drain(100, 0, rec(0, "a"))
			b.h.Ends = append(b.h.Ends, End{Topic: "t", Offset: 3, Error: ErrorStorage})
			return b
		}, nil},
		{"predecessor of another epoch", func() *builder {
			b := gapHistory(rec(0, "a"), rec(1, "c"))
			b.h.Ops[1].Produce.Sequence.Epoch = 1
			return b
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.build()
			r := mustCheck(t, &b.h, tt.want...)
			if len(tt.want) > 0 {
				mentions(t, r.Anomalies[0], "op #2", "sequence 2", `"b"`, "op #1")
			}
		})
	}
}

// TestSequenceValidation rejects identities the producer cannot have.
func TestSequenceValidation(t *testing.T) {
	for _, breakIt := range []func(*Produce){
		func(p *Produce) { p.Idempotent = false },
		func(p *Produce) { p.Sequence.Sequence = -1 },
		func(p *Produce) { p.BatchBytes = 10 },
	} {
		b := gapHistory(rec(0, "a"), rec(1, "b"), rec(2, "c"))
		for i := range b.h.Ops {
			if p := b.h.Ops[i].Produce; p != nil {
				breakIt(p)
			}
		}
		if err := b.h.Validate(); err == nil {
			t.Errorf("invalid identity accepted:\n%s", b.h.Text())
		}
	}
}
