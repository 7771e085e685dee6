package checker

import "testing"

// TestCommittedReads judges reads of a group's committed offset against
// the group's commits, each read on its own history.
func TestCommittedReads(t *testing.T) {
	type commit struct {
		call, ret int64
		outcome   Outcome
		offset    int64
	}
	tests := []struct {
		name    string
		commits []commit
		read    int64 // read back in [30, 40]
		want    []AnomalyKind
	}{
		{"the last acknowledged commit", []commit{{10, 20, OutcomeOK, 5}}, 5, nil},
		{"nothing committed yet", []commit{{35, 50, OutcomeOK, 5}}, -1, nil},
		{"nothing after an acknowledged commit", []commit{{10, 20, OutcomeOK, 5}}, -1,
			[]AnomalyKind{AnomalyBackwardCommit, AnomalyLostCommit}},
		{"an overwritten commit", []commit{{10, 20, OutcomeOK, 5}, {22, 28, OutcomeOK, 7}}, 5,
			[]AnomalyKind{AnomalyBackwardCommit, AnomalyLostCommit}},
		{"a commit overwritten only maybe", []commit{{10, 20, OutcomeOK, 5}, {22, 28, OutcomeIndefinite, 7}}, 5, nil},
		{"a commit that failed", []commit{{10, 20, OutcomeOK, 5}, {22, 28, OutcomeFail, 7}}, 7,
			[]AnomalyKind{AnomalyLostCommit}},
		{"a commit concurrent with the read", []commit{{10, 20, OutcomeOK, 5}, {25, 50, OutcomeOK, 7}}, 5, nil},
		{"the concurrent commit's value", []commit{{10, 20, OutcomeOK, 5}, {25, 50, OutcomeOK, 7}}, 7, nil},
		{"a value nobody committed", []commit{{10, 20, OutcomeOK, 5}}, 6, []AnomalyKind{AnomalyLostCommit}},
		{"a value committed only after the read", []commit{{10, 20, OutcomeOK, 5}, {45, 50, OutcomeOK, 7}}, 7,
			[]AnomalyKind{AnomalyLostCommit}},
		{"an old indefinite commit that may have landed late", []commit{{5, 8, OutcomeIndefinite, 3}, {10, 20, OutcomeOK, 5}}, 3,
			[]AnomalyKind{AnomalyBackwardCommit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			for _, c := range tt.commits {
				b.add(Op{Client: 1, Kind: KindCommit, Call: c.call, Return: c.ret, Outcome: c.outcome, Group: &Group{Group: "g", Offset: c.offset}})
			}
			read := b.add(Op{Client: 2, Kind: KindFetchCommitted, Call: 30, Return: 40, Outcome: OutcomeOK, Group: &Group{Group: "g", Offset: tt.read}})
			r := mustCheck(t, &b.h, tt.want...)
			for _, a := range r.Anomalies {
				if a.Kind == AnomalyLostCommit && a.Ops[0] != read {
					t.Errorf("lost-commit names ops %v, want the read #%d first", a.Ops, read)
				}
			}
		})
	}
}
