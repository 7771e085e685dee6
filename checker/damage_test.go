package checker

import (
	"encoding/json"
	"testing"
)

// damageHistory: offsets 0..4 acknowledged durably by 10..14; the simulator
// damaged the batch holding offsets 2..3 at time 50 (when damage is set);
// the drain then read what reads lists and, when endError is set, kept
// getting that error from readFrom on.
func damageHistory(damage bool, reads []Record, endError string) *History {
	b := newBuilder()
	values := []string{"a", "b", "c", "d", "e"}
	for i, v := range values {
		b.produce(0, int64(10+i), int64(11+i), OutcomeOK, v, int64(i))
	}
	if len(reads) > 0 {
		b.drain(100, reads[0].Offset, reads...)
	}
	if endError != "" {
		from := int64(0)
		if len(reads) > 0 {
			from = reads[len(reads)-1].Offset + 1
		}
		b.add(Op{Client: 9, Kind: KindPoll, Call: 110, Return: 111, Outcome: OutcomeFail,
			Poll: &Poll{FetchOffset: from, Final: true, Error: endError}})
		b.h.Ends = []End{{Topic: "t", Offset: -1, Error: endError}}
	} else {
		b.end(5)
	}
	if damage {
		b.h.Damage = []Damage{{Topic: "t", FirstOffset: 2, LastOffset: 3, Kind: DamageCorruption, At: 50}}
	}
	return &b.h
}

// TestDamageExcusesExactlyWhatTheSimulatorDamaged holds the broker to the
// single-node promise for data damaged at rest: damaged records may be
// lost, a reported unreadable partition is excused only after damage, and
// nothing else may go missing or be served wrong.
func TestDamageExcusesExactlyWhatTheSimulatorDamaged(t *testing.T) {
	all := []Record{rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"), rec(4, "e")}
	tests := []struct {
		name     string
		damage   bool
		reads    []Record
		endError string
		want     []AnomalyKind
	}{
		{"damaged records read intact", true, all, "", nil},
		{"the damaged batch cut like a torn tail, nothing after it", true, all[:2], "", []AnomalyKind{AnomalyLostWrite, AnomalyIncompleteDrain}},
		{"offline after damage, reported", true, nil, ErrorStorage, nil},
		{"unreadable from the damage on, reported", true, all[:2], ErrorStorage, nil},
		{"offline without damage", false, nil, ErrorStorage,
			[]AnomalyKind{AnomalyIncompleteDrain, AnomalyUnfoundedStorageError}},
		{"damaged records silently skipped", true, []Record{rec(0, "a"), rec(1, "b"), rec(4, "e")}, "",
			[]AnomalyKind{AnomalyUnreportedDamage, AnomalyUnreportedDamage}},
		{"undamaged records missing", false, []Record{rec(0, "a"), rec(1, "b"), rec(4, "e")}, "", []AnomalyKind{AnomalyLostWrite, AnomalyLostWrite}},
		{"a damaged record served with changed content", true, []Record{rec(0, "a"), rec(1, "b"), rec(2, "x"), rec(3, "d"), rec(4, "e")}, "",
			[]AnomalyKind{AnomalyNonlinearizable, AnomalyPhantomRead}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := damageHistory(tt.damage, tt.reads, tt.endError)
			mustCheck(t, h, tt.want...)
		})
	}
}

// TestDamageBeforeTheWrite: damage recorded before a produce was called
// cannot have hit it, so that write keeps its promise.
func TestDamageBeforeTheWrite(t *testing.T) {
	h := damageHistory(true, []Record{rec(0, "a"), rec(1, "b")}, "")
	h.Damage[0].At = 5
	h.Ends[0].Offset = 2
	mustCheck(t, h, AnomalyLostWrite, AnomalyLostWrite, AnomalyLostWrite)
}

// TestCorruptRead flags a poll whose data failed the client's validation.
func TestCorruptRead(t *testing.T) {
	h := damageHistory(true, []Record{rec(0, "a"), rec(1, "b"), rec(2, "c"), rec(3, "d"), rec(4, "e")}, "")
	h.Ops = append(h.Ops, Op{Client: 3, Topic: "t", Kind: KindPoll, Call: 60, Return: 61, Outcome: OutcomeFail,
		Poll: &Poll{FetchOffset: 2, Error: ErrorCorruptMessage}})
	r := mustCheck(t, h, AnomalyCorruptRead)
	mentions(t, r.Anomalies[0], "failed the client's validation")
}

// TestDamageValidationAndJSON: damage records are validated and survive a
// JSON round trip; the checker never modifies the history it judges.
func TestDamageValidationAndJSON(t *testing.T) {
	h := damageHistory(true, nil, ErrorStorage)
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Damage) != 1 || back.Damage[0] != h.Damage[0] || back.Ends[0].Error != ErrorStorage {
		t.Fatalf("round trip lost the damage: %+v %+v", back.Damage, back.Ends)
	}
	Check(h, Options{})
	if !h.Ops[2].Produce.Durable {
		t.Fatal("Check modified the history's durability promise")
	}
	for _, bad := range []Damage{
		{Topic: "t", FirstOffset: 3, LastOffset: 2, Kind: DamageCorruption},
		{Topic: "t", FirstOffset: 0, LastOffset: 2, Kind: "melted"},
		{Topic: "", FirstOffset: 0, LastOffset: 2, Kind: DamageLatent},
	} {
		h.Damage = []Damage{bad}
		if err := h.Validate(); err == nil {
			t.Errorf("damage %+v validated", bad)
		}
	}
}

// TestUnreadableDamagedPartitionUnderRetention: once the broker reports a
// damaged partition unreadable, the drain cannot show what retention
// deleted, so a consumer's jump forward may have followed a deletion; with
// no retention it is a skip whatever the damage.
func TestUnreadableDamagedPartitionUnderRetention(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention *Retention
		want      []AnomalyKind
	}{
		{"retention may have deleted it", sizeRetention(100), nil},
		{"no retention", nil, []AnomalyKind{AnomalyPollSkip}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := damageHistory(true, nil, ErrorStorage)
			h.Ops = append(h.Ops,
				Op{Client: 3, Topic: "t", Kind: KindPoll, Call: 20, Return: 21, Outcome: OutcomeOK, Poll: &Poll{FetchOffset: 0, Records: []Record{rec(0, "a")}}},
				Op{Client: 3, Topic: "t", Kind: KindPoll, Call: 30, Return: 31, Outcome: OutcomeOK, Poll: &Poll{FetchOffset: 3, Records: []Record{rec(3, "d")}}})
			h.Retention = tt.retention
			mustCheck(t, h, tt.want...)
		})
	}
}

// TestDamagedRecordDeletedByRetention: a damaged record below the legal
// log start may have been deleted with its segment, so its absence from
// the drain is not damage skipped silently.
func TestDamagedRecordDeletedByRetention(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention *Retention
		want      []AnomalyKind
	}{
		{"retention may have deleted it", sizeRetention(200), nil},
		{"no retention", nil, []AnomalyKind{AnomalyLostWrite, AnomalyLostWrite, AnomalyPrematureDeletion, AnomalyUnreportedDamage}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := retentionHistory(3, tt.retention)
			b.h.Damage = []Damage{{Topic: "t", FirstOffset: 2, LastOffset: 2, Kind: DamageLatent, At: 50}}
			b.h.Ops[len(b.h.Ops)-1].Poll.FetchOffset = 1 // the drain's position before its reset
			mustCheck(t, &b.h, tt.want...)
		})
	}
}
