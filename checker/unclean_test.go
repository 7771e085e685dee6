package checker

import (
	"encoding/json"
	"strings"
	"testing"
)

// uncleanHistory: "a" and "b" acknowledged at offsets 0 and 1 with
// acks=all, durable; a consumer read both before time 100. An unclean
// election at time 60 settled at 100; the new leader had only "a", so it
// gave offset 1 to "x", acknowledged at time 120 and drained with "a".
// Each test edits it.
func uncleanHistory(allowed bool) *History {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0)
	b.produce(0, 21, 30, OutcomeOK, "b", 1)
	b.poll(1, 41, 50, 0, rec(0, "a"), rec(1, "b"))
	b.produce(2, 110, 120, OutcomeOK, "x", 1)
	b.drain(200, 0, rec(0, "a"), rec(1, "x"))
	b.end(2)
	b.h.Replication = &Replication{CommittedSurvives: true,
		UncleanElections: []UncleanElection{{Topic: "t", Partition: 0, Offset: 42, Leader: 3, LeaderEpoch: 4, Time: 60, SettledAt: 100}}}
	if allowed {
		b.h.Replication.UncleanTopics = []string{"t"}
	}
	return &b.h
}

// TestUncleanElectionScopesLoss judges the loss an unclean election
// brings: excused and reported before the partition settled when the
// configuration allows it, an anomaly when it does not, and nothing
// excused after the settling.
func TestUncleanElectionScopesLoss(t *testing.T) {
	tests := []struct {
		name    string
		allowed bool
		edit    func(h *History)
		want    []AnomalyKind
		note    string
	}{
		{name: "allowed: a write acknowledged before it settled is lost, its offset reused and its read not judged",
			allowed: true, note: "1 writes acknowledged with a durability promise were lost (offsets 1)"},
		{name: "not allowed: the election is an anomaly and the loss too",
			want: []AnomalyKind{AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset, AnomalyUncleanElection}},
		{name: "allowed: a write acknowledged after it settled must stay",
			allowed: true, want: []AnomalyKind{AnomalyLostWrite},
			edit: func(h *History) {
				h.Ops = append(h.Ops, Op{Client: 2, Kind: KindProduce, Call: 130, Return: 140, Outcome: OutcomeOK, Topic: "t",
					Produce: &Produce{Value: "y", ProducerID: 2, Idempotent: true, Acks: AcksAll, Seq: 1, Durable: true, Offset: 2}})
			}},
		{name: "allowed: a read after it settled is judged",
			allowed: true, want: []AnomalyKind{AnomalyNonlinearizable, AnomalyInconsistentOffset},
			edit: func(h *History) {
				h.Ops = append(h.Ops, Op{Client: 1, Kind: KindPoll, Call: 150, Return: 160, Outcome: OutcomeOK, Topic: "t",
					Poll: &Poll{FetchOffset: 1, Records: []Record{rec(1, "b")}}})
			}},
		{name: "allowed: a settling before every write excuses nothing",
			allowed: true, want: []AnomalyKind{AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset},
			edit: func(h *History) {
				h.Replication.UncleanElections[0].Time, h.Replication.UncleanElections[0].SettledAt = 1, 5
			}},
		{name: "allowed: a group reset past the new log end commits lower offsets (sim seed 153)",
			allowed: true, note: "were lost",
			edit: func(h *History) {
				h.Ops = append(h.Ops,
					Op{Client: 3, Kind: KindCommit, Call: 52, Return: 55, Outcome: OutcomeOK, Topic: "t", Group: &Group{Group: "g", Offset: 2}},
					Op{Client: 4, Kind: KindFetchCommitted, Call: 150, Return: 151, Outcome: OutcomeOK, Topic: "t", Group: &Group{Group: "g", Offset: 2}},
					Op{Client: 3, Kind: KindCommit, Call: 160, Return: 161, Outcome: OutcomeOK, Topic: "t", Group: &Group{Group: "g", Offset: 1}})
			}},
		{name: "allowed: commits after the settling are still ordered",
			allowed: true, want: []AnomalyKind{AnomalyBackwardCommit},
			edit: func(h *History) {
				h.Ops = append(h.Ops,
					Op{Client: 3, Kind: KindCommit, Call: 150, Return: 151, Outcome: OutcomeOK, Topic: "t", Group: &Group{Group: "g", Offset: 2}},
					Op{Client: 3, Kind: KindCommit, Call: 160, Return: 161, Outcome: OutcomeOK, Topic: "t", Group: &Group{Group: "g", Offset: 1}})
			}},
		{name: "allowed: an election of another partition excuses nothing here",
			allowed: true, want: []AnomalyKind{AnomalyNonlinearizable, AnomalyLostWrite, AnomalyInconsistentOffset},
			edit: func(h *History) { h.Replication.UncleanElections[0].Partition = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := uncleanHistory(tt.allowed)
			if tt.edit != nil {
				tt.edit(h)
			}
			r := mustCheck(t, h, tt.want...)
			var stat CheckStat
			for _, c := range r.Checks {
				if c.Name == "unclean-election" {
					stat = c
				}
			}
			if stat.Checked != 1 || stat.Anomalies != countKind(r.Anomalies, AnomalyUncleanElection) {
				t.Errorf("unclean-election stat %+v", stat)
			}
			if tt.note != "" && !strings.Contains(stat.Note, tt.note) {
				t.Errorf("note %q, want it to contain %q", stat.Note, tt.note)
			}
		})
	}
}

func countKind(anomalies []Anomaly, kind AnomalyKind) int {
	n := 0
	for _, a := range anomalies {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// TestUncleanElectionsValidateAndRoundTrip refuses impossible evidence and
// keeps the elections through JSON.
func TestUncleanElectionsValidateAndRoundTrip(t *testing.T) {
	h := uncleanHistory(true)
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Replication.UncleanElections; len(got) != 1 || got[0] != h.Replication.UncleanElections[0] || len(back.Replication.UncleanTopics) != 1 {
		t.Fatalf("round trip gave %+v", back.Replication)
	}
	h.Replication.UncleanElections[0].SettledAt = 10 // before it happened
	if r := Check(h, Options{}); r.Status != StatusInvalid {
		t.Fatalf("status %s for an election settled before it happened, want invalid", r.Status)
	}
}
