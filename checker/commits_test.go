package checker

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

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
		{"another client's concurrent commit landed last", []commit{{10, 20, OutcomeOK, 5}, {15, 25, OutcomeOK, 3}}, 3, nil},
		{"another client's earlier commit", []commit{{10, 20, OutcomeOK, 5}, {2, 8, OutcomeOK, 3}}, 3,
			[]AnomalyKind{AnomalyBackwardCommit, AnomalyLostCommit}},
		{"another client's indefinite commit may land late", []commit{{10, 20, OutcomeOK, 5}, {2, 8, OutcomeIndefinite, 3}}, 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			for i, c := range tt.commits {
				// The first commit is client 1's; later ones are client 1's
				// unless the case names another client's.
				client := 1
				if i > 0 && strings.Contains(tt.name, "another client") {
					client = 3
				}
				b.add(Op{Client: client, Kind: KindCommit, Call: c.call, Return: c.ret, Outcome: c.outcome, Group: &Group{Group: "g", Offset: c.offset}})
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

// TestStaleGenerationCommits judges acknowledged commits by the generations
// the clients were handed: member a was handed generation 1 by a SyncGroup
// sent at 10 and answered at 20; each case adds a commit of a's and
// another client's handout of a later or equal generation, carried by a
// failed commit of that client, so that the evidence is only what clients
// observed.
func TestStaleGenerationCommits(t *testing.T) {
	a := &Member{ID: "a", Generation: 1, SyncCall: 10, SyncReturn: 20}
	type handout struct {
		generation         int32
		syncCall, syncBack int64
	}
	tests := []struct {
		name    string
		later   handout
		call    int64 // a's commit, answered 5 later
		outcome Outcome
		stale   bool
	}{
		{name: "a later generation answered before the commit", later: handout{2, 30, 40}, call: 50, outcome: OutcomeOK, stale: true},
		{name: "refused as it must be", later: handout{2, 30, 40}, call: 50, outcome: OutcomeFail},
		{name: "maybe stored", later: handout{2, 30, 40}, call: 50, outcome: OutcomeIndefinite},
		{name: "the later generation answered after the commit was sent", later: handout{2, 30, 60}, call: 50, outcome: OutcomeOK},
		{name: "the later SyncGroup sent before a's was answered", later: handout{2, 15, 40}, call: 50, outcome: OutcomeOK},
		{name: "the same generation", later: handout{1, 30, 40}, call: 50, outcome: OutcomeOK},
		{name: "an earlier generation", later: handout{0, 30, 40}, call: 50, outcome: OutcomeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			b.add(Op{Client: 1, Kind: KindCommit, Call: 21, Return: 25, Outcome: OutcomeOK, Group: &Group{Group: "g", Offset: 3, Member: a}})
			other := &Member{ID: "b", Generation: tt.later.generation, SyncCall: tt.later.syncCall, SyncReturn: tt.later.syncBack}
			witness := b.add(Op{Client: 2, Kind: KindCommit, Call: tt.later.syncBack, Return: tt.later.syncBack + 5, Outcome: OutcomeFail,
				Group: &Group{Group: "g", Offset: 4, Member: other}})
			commit := b.add(Op{Client: 1, Kind: KindCommit, Call: tt.call, Return: tt.call + 5, Outcome: tt.outcome, Group: &Group{Group: "g", Offset: 6, Member: a}})
			if err := b.h.Validate(); err != nil {
				t.Fatal(err)
			}
			anomalies, checked := checkStaleCommits(&b.h)
			if checked == 0 {
				t.Fatal("no commit judged")
			}
			if !tt.stale {
				if len(anomalies) != 0 {
					t.Fatalf("anomalies %v, want none", anomalies)
				}
				return
			}
			if len(anomalies) != 1 || anomalies[0].Kind != AnomalyStaleGenerationCommit ||
				!reflect.DeepEqual(anomalies[0].Ops, []int{commit, witness}) || anomalies[0].Offset != 6 {
				t.Fatalf("anomalies %+v, want one stale-generation-commit of op #%d witnessed by #%d", anomalies, commit, witness)
			}
		})
	}
}

// TestStaleCommitsPerGroup checks that a later generation of another
// group proves nothing.
func TestStaleCommitsPerGroup(t *testing.T) {
	b := newBuilder()
	b.add(Op{Client: 1, Kind: KindCommit, Call: 21, Return: 25, Outcome: OutcomeOK,
		Group: &Group{Group: "g", Offset: 3, Member: &Member{ID: "a", Generation: 1, SyncCall: 10, SyncReturn: 20}}})
	b.add(Op{Client: 2, Kind: KindCommit, Call: 41, Return: 45, Outcome: OutcomeOK,
		Group: &Group{Group: "h", Offset: 3, Member: &Member{ID: "b", Generation: 5, SyncCall: 30, SyncReturn: 40}}})
	b.add(Op{Client: 1, Kind: KindCommit, Call: 50, Return: 55, Outcome: OutcomeOK,
		Group: &Group{Group: "g", Offset: 4, Member: &Member{ID: "a", Generation: 1, SyncCall: 10, SyncReturn: 20}}})
	if anomalies, _ := checkStaleCommits(&b.h); len(anomalies) != 0 {
		t.Fatalf("anomalies %v, want none", anomalies)
	}
}

// TestMemberValidated checks that a commit's membership must be well
// formed and confirmed before the commit, and only commits carry one.
func TestMemberValidated(t *testing.T) {
	tests := []struct {
		name   string
		kind   Kind
		member Member
		ok     bool
	}{
		{name: "well formed", kind: KindCommit, member: Member{ID: "a", Generation: 2, SyncCall: 10, SyncReturn: 20}, ok: true},
		{name: "on a read", kind: KindFetchCommitted, member: Member{ID: "a", Generation: 2, SyncCall: 10, SyncReturn: 20}},
		{name: "no member id", kind: KindCommit, member: Member{Generation: 2, SyncCall: 10, SyncReturn: 20}},
		{name: "negative generation", kind: KindCommit, member: Member{ID: "a", Generation: -1, SyncCall: 10, SyncReturn: 20}},
		{name: "answered before sent", kind: KindCommit, member: Member{ID: "a", Generation: 2, SyncCall: 20, SyncReturn: 10}},
		{name: "answered after the commit", kind: KindCommit, member: Member{ID: "a", Generation: 2, SyncCall: 10, SyncReturn: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			m := tt.member
			b.add(Op{Client: 1, Kind: tt.kind, Call: 30, Return: 35, Outcome: OutcomeOK, Group: &Group{Group: "g", Offset: 3, Member: &m}})
			err := b.h.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidHistory)) {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestMemberJSONRoundTrip checks that a commit's membership survives the
// history's JSON form.
func TestMemberJSONRoundTrip(t *testing.T) {
	b := newBuilder()
	b.add(Op{Client: 1, Kind: KindCommit, Call: 30, Return: 35, Outcome: OutcomeOK,
		Group: &Group{Group: "g", Offset: 3, Member: &Member{ID: "a-1", Generation: 2, SyncCall: 10, SyncReturn: 20}}})
	data, err := json.Marshal(&b.h)
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Ops, b.h.Ops) {
		t.Fatalf("round trip gave %+v, want %+v", back.Ops[0].Group.Member, b.h.Ops[0].Group.Member)
	}
}
