package checker

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// quorumCase is one hand-built quorum history: the base run (baseQuorumRun)
// with the given records, events recorded after it, and edits of what it
// recorded.
type quorumCase struct {
	name string
	// records replaces defaultToyEntries when set.
	records []string
	// then records events after the base run (from time 25).
	then func(r *QuorumRecorder)
	// edit changes the recorded history.
	edit     func(t testing.TB, h *QuorumHistory)
	liveness *QuorumLiveness
	// noCheck plants a metadata machine that checks no invariant.
	noCheck bool
	// want are the anomaly kinds CheckQuorum must report, and no other.
	want     []QuorumAnomalyKind
	findings []QuorumFindingKind
	// active, with liveness, is the expected ControllerActiveTime.
	active int64
}

// restartNode records node id crashing at time and restarting right after
// with the durable quorum state given and its whole log.
func restartNode(r *QuorumRecorder, id int32, time int64, epoch int32, role QuorumRole, leader, vote int32) {
	r.Stop(id, time)
	r.Start(id, time+1, true)
	r.State(id, time+1, epoch, role, leader, vote)
	r.LogEnd(id, time+1, 10)
}

// becomeLeader records node id winning epoch at time, voted for by voter.
func becomeLeader(r *QuorumRecorder, id, voter int32, time int64, epoch int32) {
	r.State(id, time, epoch, QuorumRoleCandidate, NoQuorumNode, id)
	r.State(voter, time, epoch, QuorumRoleUnattached, NoQuorumNode, id)
	r.State(id, time+1, epoch, QuorumRoleLeader, id, id)
	r.State(voter, time+1, epoch, QuorumRoleFollower, id, id)
}

func defaultDigest(t testing.TB, entries [][]byte) string { return toyDigest(t, entries) }

// quorumCases holds, for each anomaly, a history that triggers it and a
// near miss that must not.
var quorumCases = []quorumCase{
	{name: "correct run"},

	{name: "epoch goes back across a restart", want: []QuorumAnomalyKind{QuorumAnomalyEpochWentBack},
		then: func(r *QuorumRecorder) { restartNode(r, 2, 30, 0, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode) }},
	{name: "near miss: restart keeps the epoch",
		then: func(r *QuorumRecorder) { restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 1) }},

	{name: "an observer's epoch goes back within an incarnation", want: []QuorumAnomalyKind{QuorumAnomalyEpochWentBack},
		then: func(r *QuorumRecorder) { r.State(4, 30, 0, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode) }},
	{name: "near miss: a restarted observer starts from epoch 0",
		then: func(r *QuorumRecorder) { restartNode(r, 4, 30, 0, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode) }},

	{name: "second vote in one epoch", want: []QuorumAnomalyKind{QuorumAnomalyTwoVotesOneEpoch},
		then: func(r *QuorumRecorder) { r.State(2, 30, 1, QuorumRoleFollower, 1, 3) }},
	{name: "second vote in one epoch after a restart (vote not durable)", want: []QuorumAnomalyKind{QuorumAnomalyTwoVotesOneEpoch},
		then: func(r *QuorumRecorder) { restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 3) }},
	{name: "near miss: another vote in the next epoch",
		then: func(r *QuorumRecorder) { r.State(2, 30, 2, QuorumRoleUnattached, NoQuorumNode, 3) }},

	{name: "two leaders in one epoch", want: []QuorumAnomalyKind{QuorumAnomalyTwoLeadersOneEpoch},
		then: func(r *QuorumRecorder) { r.State(3, 30, 1, QuorumRoleLeader, 3, 1) }},
	// No node recorded node 2 leading epoch 1, so the client's view is a
	// phantom as well.
	{name: "a client sees another controller in the epoch", want: []QuorumAnomalyKind{QuorumAnomalyTwoLeadersOneEpoch, QuorumAnomalyPhantomController},
		then: func(r *QuorumRecorder) { r.Observe("admin", 30, 2, 1) }},
	{name: "a client sees a controller no node recorded", want: []QuorumAnomalyKind{QuorumAnomalyPhantomController},
		then: func(r *QuorumRecorder) { r.Observe("admin", 30, 2, 5) }},
	{name: "a client sees a controller before its leadership is durable", want: []QuorumAnomalyKind{QuorumAnomalyPhantomController},
		then: func(r *QuorumRecorder) { becomeLeader(r, 3, 2, 40, 2); r.Observe("admin", 35, 3, 2) }},
	{name: "near miss: a new leader in a new epoch, seen by a client",
		then: func(r *QuorumRecorder) {
			becomeLeader(r, 3, 2, 30, 2)
			r.Observe("admin", 40, 3, 2)
			r.Observe("broker-4", 41, 1, 1)
		}},

	{name: "high watermark goes back in an incarnation", want: []QuorumAnomalyKind{QuorumAnomalyHighWatermarkWentBack},
		then: func(r *QuorumRecorder) { r.HighWatermark(2, 30, 5) }},
	{name: "near miss: a restarted follower relearns a lower high watermark",
		then: func(r *QuorumRecorder) { restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 1); r.HighWatermark(2, 32, 5) }},
	{name: "a new leader's high watermark is below what was committed", want: []QuorumAnomalyKind{QuorumAnomalyHighWatermarkWentBack},
		then: func(r *QuorumRecorder) {
			restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 1)
			becomeLeader(r, 2, 3, 40, 2)
			r.HighWatermark(2, 42, 7)
		}},
	{name: "near miss: a new leader commits beyond what was committed",
		then: func(r *QuorumRecorder) {
			restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 1)
			becomeLeader(r, 2, 3, 40, 2)
			r.LogEnd(2, 42, 11)
			r.LogEnd(3, 42, 11)
			r.HighWatermark(2, 42, 11)
		}},

	// The observer, node 4, holds the log too, but counts for no majority.
	{name: "high watermark beyond a majority's durable logs", want: []QuorumAnomalyKind{QuorumAnomalyHighWatermarkWithoutMajority},
		edit: func(t testing.TB, h *QuorumHistory) {
			removeQuorumEvent(t, h, 2, QuorumEventLogEnd, 10)
			removeQuorumEvent(t, h, 3, QuorumEventLogEnd, 10)
		}},
	{name: "near miss: one follower lags",
		edit: func(t testing.TB, h *QuorumHistory) { removeQuorumEvent(t, h, 3, QuorumEventLogEnd, 10) }},

	{name: "entry applied at the high watermark", want: []QuorumAnomalyKind{QuorumAnomalyAppliedUncommitted},
		edit: func(t testing.TB, h *QuorumHistory) {
			findQuorumEvent(t, h, 2, QuorumEventHighWatermark, 10).Offset = 9
		}},
	{name: "near miss: applied up to just below the high watermark",
		edit: func(t testing.TB, h *QuorumHistory) {
			findQuorumEvent(t, h, 2, QuorumEventHighWatermark, 10).Offset = 9
			removeQuorumEvent(t, h, 2, QuorumEventApplied, 9)
		}},

	{name: "applied offsets skip one", want: []QuorumAnomalyKind{QuorumAnomalyAppliedNotDense},
		edit: func(t testing.TB, h *QuorumHistory) { removeQuorumEvent(t, h, 2, QuorumEventApplied, 5) }},
	{name: "near miss: a restarted node applies the log again from 0",
		then: func(r *QuorumRecorder) {
			restartNode(r, 2, 30, 1, QuorumRoleFollower, 1, 1)
			r.HighWatermark(2, 32, 10)
			applyAll(r, 2, 32, toyEntries(defaultToyEntries), "")
		}},

	{name: "one offset applied with other data", want: []QuorumAnomalyKind{QuorumAnomalyCommittedDataDiffers},
		edit: func(t testing.TB, h *QuorumHistory) {
			findQuorumEvent(t, h, 3, QuorumEventApplied, 9).Data = []byte("partition t 0 leader=2 isr=1,2,3")
		}},
	{name: "one offset applied in another epoch", want: []QuorumAnomalyKind{QuorumAnomalyCommittedDataDiffers},
		edit: func(t testing.TB, h *QuorumHistory) { findQuorumEvent(t, h, 3, QuorumEventApplied, 4).Epoch = 2 }},

	{name: "log start without a snapshot", want: []QuorumAnomalyKind{QuorumAnomalyNoSnapshotAtLogStart},
		then: func(r *QuorumRecorder) { r.LogStart(2, 30, 5) }},
	{name: "near miss: log start at a snapshot",
		then: func(r *QuorumRecorder) {
			r.Snapshot(2, 30, 5, 1, toyDigest(nil, toyEntries(defaultToyEntries)[:5]), SnapshotTaken)
			r.LogStart(2, 31, 5)
		}},

	{name: "a snapshot's digest is not the committed state's", want: []QuorumAnomalyKind{QuorumAnomalySnapshotDiffers},
		then: func(r *QuorumRecorder) { r.Snapshot(2, 30, 5, 1, "wrong", SnapshotTaken) }},
	{name: "two snapshots at one offset with different epochs", want: []QuorumAnomalyKind{QuorumAnomalySnapshotDiffers},
		then: func(r *QuorumRecorder) {
			digest := toyDigest(nil, toyEntries(defaultToyEntries)[:5])
			r.Snapshot(2, 30, 5, 1, digest, SnapshotTaken)
			r.Snapshot(3, 30, 5, 2, digest, SnapshotTaken)
		}},
	{name: "near miss: equal snapshots on two nodes",
		then: func(r *QuorumRecorder) {
			digest := toyDigest(nil, toyEntries(defaultToyEntries)[:5])
			r.Snapshot(2, 30, 5, 1, digest, SnapshotTaken)
			r.Snapshot(3, 30, 5, 1, digest, SnapshotTaken)
		}},

	{name: "the leader installs a snapshot", want: []QuorumAnomalyKind{QuorumAnomalyLeaderLoadedSnapshot},
		then: func(r *QuorumRecorder) {
			r.Snapshot(1, 30, 10, 1, toyDigest(nil, toyEntries(defaultToyEntries)), SnapshotInstalled)
		}},
	{name: "near miss: the leader takes a snapshot, a follower installs one",
		then: func(r *QuorumRecorder) {
			digest := toyDigest(nil, toyEntries(defaultToyEntries))
			r.Snapshot(1, 30, 10, 1, digest, SnapshotTaken)
			r.Snapshot(2, 30, 10, 1, digest, SnapshotInstalled)
		}},

	{name: "a node's state digest differs", want: []QuorumAnomalyKind{QuorumAnomalyMetadataDiffers},
		edit: func(t testing.TB, h *QuorumHistory) { findQuorumEvent(t, h, 2, QuorumEventApplied, 9).Digest = "other" }},
	{name: "near miss: a node records no digest",
		edit: func(t testing.TB, h *QuorumHistory) { findQuorumEvent(t, h, 2, QuorumEventApplied, 9).Digest = "" }},

	{name: "a committed record the machine refuses", want: []QuorumAnomalyKind{QuorumAnomalyMetadataRejected},
		records: append(slices.Clone(defaultToyEntries), "bogus")},
	{name: "near miss: a valid last record", records: append(slices.Clone(defaultToyEntries), "fence 4")},

	{name: "the machine's invariants fail", want: []QuorumAnomalyKind{QuorumAnomalyMetadataInvariant},
		records: append(slices.Clone(defaultToyEntries[:8]), "partition t 0 leader=1 isr=2,3")},
	{name: "near miss: a leader inside its ISR",
		records: append(slices.Clone(defaultToyEntries[:8]), "partition t 0 leader=2 isr=2,3")},

	{name: "a fenced broker leads (the machine checks nothing)", noCheck: true, want: []QuorumAnomalyKind{QuorumAnomalyFencedLeader},
		records: append(slices.Clone(defaultToyEntries), "fence 1")},
	{name: "a fenced broker leads (both checks see it)", want: []QuorumAnomalyKind{QuorumAnomalyMetadataInvariant, QuorumAnomalyFencedLeader},
		records: append(slices.Clone(defaultToyEntries), "fence 1")},
	{name: "an unregistered broker leads", noCheck: true, want: []QuorumAnomalyKind{QuorumAnomalyFencedLeader},
		findings: []QuorumFindingKind{QuorumFindingUncleanElection},
		records:  append(slices.Clone(defaultToyEntries), "partition t 0 leader=7 isr=7")},
	{name: "near miss: leadership moves before the fence",
		records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=2 isr=2,3", "fence 1")},

	{name: "unclean election is information", findings: []QuorumFindingKind{QuorumFindingUncleanElection},
		records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=4 isr=4")},
	{name: "near miss: a leader from the ISR",
		records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=2 isr=2")},
	{name: "near miss: a leader from the ELR",
		records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=1 isr=1 elr=4", "partition t 0 leader=4 isr=4")},

	{name: "liveness holds in the correct run", liveness: &QuorumLiveness{HealTime: 5, BoundNanos: 100}, active: 11},
	{name: "no controller after the heal", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: -1,
		want: []QuorumAnomalyKind{QuorumAnomalyNoControllerAfterHeal},
		then: func(r *QuorumRecorder) { r.Stop(1, 25) }},
	{name: "a controller elected after the bound", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: -1,
		want: []QuorumAnomalyKind{QuorumAnomalyNoControllerAfterHeal},
		then: func(r *QuorumRecorder) { r.Stop(1, 25); becomeLeader(r, 2, 3, 90, 2) }},
	{name: "a leader whose epoch no majority follows", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: -1,
		want: []QuorumAnomalyKind{QuorumAnomalyNoControllerAfterHeal},
		then: func(r *QuorumRecorder) {
			r.State(2, 25, 2, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode)
			r.State(3, 25, 2, QuorumRoleUnattached, NoQuorumNode, NoQuorumNode)
		}},
	{name: "near miss: a controller elected within the bound", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: 61,
		then: func(r *QuorumRecorder) { r.Stop(1, 25); becomeLeader(r, 2, 3, 60, 2) }},

	{name: "a running broker fenced after the heal", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: 30,
		want:    []QuorumAnomalyKind{QuorumAnomalyBrokerFencedAfterHeal},
		records: append(slices.Clone(defaultToyEntries), "fence 4")},
	{name: "near miss: the fenced broker is not running", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: 30,
		records: append(slices.Clone(defaultToyEntries), "fence 4"),
		then:    func(r *QuorumRecorder) { r.Stop(4, 25) }},
	{name: "near miss: the broker is unfenced again", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50}, active: 30,
		records: append(slices.Clone(defaultToyEntries), "fence 4", "unfence 4")},
}

// TestCheckQuorum runs every case and requires exactly its anomaly kinds
// and findings.
func TestCheckQuorum(t *testing.T) {
	for _, c := range quorumCases {
		t.Run(c.name, func(t *testing.T) {
			h := buildQuorumCase(t, c)
			result := CheckQuorum(h, QuorumCheckConfig{
				NewMetadataMachine: func() MetadataMachine { return newToy(c.noCheck) },
				Liveness:           c.liveness,
			})
			if result.Err != nil {
				t.Fatalf("invalid: %v", result.Err)
			}
			want := slices.Sorted(slices.Values(c.want))
			if got := quorumKinds(result); !slices.Equal(got, want) {
				t.Fatalf("anomaly kinds %v, want %v:\n%s", got, want, result.Report())
			}
			if (len(want) == 0) != (result.Status == StatusOK) {
				t.Fatalf("status %s with anomalies %v", result.Status, want)
			}
			var findings []QuorumFindingKind
			for _, f := range result.Findings {
				findings = append(findings, f.Kind)
			}
			if !slices.Equal(findings, c.findings) {
				t.Fatalf("findings %v, want %v:\n%s", findings, c.findings, result.Report())
			}
			if len(want) == 0 && !strings.HasPrefix(result.Verdict, "OK: 4 nodes (3 voters), ") {
				t.Errorf("verdict %q", result.Verdict)
			}
			if c.liveness != nil && result.ControllerActiveTime != c.active {
				t.Fatalf("controller active at %d, want %d:\n%s", result.ControllerActiveTime, c.active, result.Report())
			}
			for _, check := range result.Checks {
				if check.Checked == 0 && check.Name != "snapshots" && check.Name != "brokers-after-heal" {
					t.Errorf("check %s examined nothing", check.Name)
				}
			}
		})
	}
}

func buildQuorumCase(t testing.TB, c quorumCase) *QuorumHistory {
	records := defaultToyEntries
	if c.records != nil {
		records = c.records
	}
	r := baseQuorumRun(t, toyEntries(records), defaultDigest)
	if c.then != nil {
		c.then(r)
	}
	h := r.History()
	if c.edit != nil {
		c.edit(t, h)
	}
	return h
}

// TestCheckQuorumExplains checks that an anomaly's explanation names its
// witnesses, and that the report lists anomalies and findings.
func TestCheckQuorumExplains(t *testing.T) {
	h := buildQuorumCase(t, quorumCase{then: func(r *QuorumRecorder) {
		r.State(3, 30, 1, QuorumRoleLeader, 3, 1)
	}, records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=4 isr=4")})
	result := CheckQuorum(h, QuorumCheckConfig{NewMetadataMachine: newToyMachine})
	if result.Verdict != "FAIL: two-leaders-one-epoch x1" {
		t.Fatalf("verdict %q", result.Verdict)
	}
	a := result.Anomalies[0]
	if a.Epoch != 1 || len(a.Events) != 2 || a.Events[1].Node != 3 {
		t.Fatalf("anomaly %+v", a)
	}
	for _, want := range []string{
		"two-leaders-one-epoch: node 1 event #4 at time 11 names node 1 leader of epoch 1, and node 3 event #",
		"info unclean-election: the entry committed at offset 10 (epoch 1) elected leaders outside the ISR and ELR of t-0",
	} {
		if !strings.Contains(result.Report(), want) {
			t.Errorf("report lacks %q:\n%s", want, result.Report())
		}
	}
}

// TestCheckQuorumIsDeterministic runs one failing history twice.
func TestCheckQuorumIsDeterministic(t *testing.T) {
	c := quorumCase{records: append(slices.Clone(defaultToyEntries), "fence 1"), noCheck: true,
		then: func(r *QuorumRecorder) { r.HighWatermark(2, 30, 5); r.State(3, 30, 1, QuorumRoleLeader, 3, 1) }}
	first := CheckQuorum(buildQuorumCase(t, c), QuorumCheckConfig{NewMetadataMachine: newToyMachine})
	second := CheckQuorum(buildQuorumCase(t, c), QuorumCheckConfig{NewMetadataMachine: newToyMachine})
	if first.Report() != second.Report() || first.Status != StatusFail {
		t.Fatalf("reports differ or pass:\n%s\n%s", first.Report(), second.Report())
	}
}

// TestQuorumHistoryValidate requires an invalid history to be refused with
// ErrInvalidQuorumHistory and a readable reason, never judged.
func TestQuorumHistoryValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(h *QuorumHistory)
		want string
	}{
		{"no voters", func(h *QuorumHistory) { h.Voters = nil }, "no voters"},
		{"a voter without a node", func(h *QuorumHistory) { h.Voters = append(h.Voters, 9) }, "voter 9 has no node"},
		{"a node twice", func(h *QuorumHistory) { h.Nodes = append(h.Nodes, h.Nodes[0]) }, "node id 1 appears twice"},
		{"no start first", func(h *QuorumHistory) { h.Nodes[0].Events = h.Nodes[0].Events[1:] }, "first event is \"state\""},
		{"time goes back", func(h *QuorumHistory) { h.Nodes[0].Events[4].Time = 5 }, "before the previous event's"},
		{"a leader naming another", func(h *QuorumHistory) { h.Nodes[0].Events[4].Leader = 2 }, "names 2 as leader"},
		{"a follower without a leader", func(h *QuorumHistory) { h.Nodes[1].Events[4].Leader = NoQuorumNode }, "names no leader"},
		{"an unknown kind", func(h *QuorumHistory) { h.Nodes[0].Events[2].Kind = "log-middle" }, "unknown kind"},
		{"an unknown role", func(h *QuorumHistory) { h.Nodes[0].Events[1].Role = "king" }, "unknown role"},
		{"a snapshot without digest", func(h *QuorumHistory) {
			h.Nodes[0].Events = append(h.Nodes[0].Events, QuorumEvent{Time: 30, Kind: QuorumEventSnapshot, Offset: 5, Source: SnapshotTaken})
		}, "without a digest"},
		{"a negative offset", func(h *QuorumHistory) { h.Nodes[0].Events[2].Offset = -1 }, "negative offset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := buildQuorumCase(t, quorumCase{})
			c.edit(h)
			result := CheckQuorum(h, QuorumCheckConfig{})
			if result.Status != StatusInvalid || !errors.Is(result.Err, ErrInvalidQuorumHistory) || !strings.Contains(result.Err.Error(), c.want) {
				t.Fatalf("got %s %v, want an invalid history mentioning %q", result.Status, result.Err, c.want)
			}
		})
	}
}

// TestQuorumHistoryTextAndJSON renders a small history as text, exactly,
// and round-trips it through JSON, which refuses unknown fields.
func TestQuorumHistoryTextAndJSON(t *testing.T) {
	r := NewQuorumRecorder([]int32{0})
	r.Start(0, 0, true)
	r.State(0, 1, 1, QuorumRoleLeader, 0, 0)
	r.LogEnd(0, 2, 1)
	r.HighWatermark(0, 3, 1)
	r.Applied(0, 3, 0, 1, nil, "")
	r.Snapshot(0, 4, 1, 1, "0123456789abcdef", SnapshotTaken)
	r.Observe("admin", 4, 0, 1)
	r.Stop(0, 5)
	want := `t=0 n0#0 start
t=1 n0#1 state epoch=1 leader leader=0 vote=0
t=2 n0#2 log-end 1
t=3 n0#3 high-watermark 1
t=3 n0#4 applied 0 epoch=1 0B
t=4 n0#5 snapshot taken end=1 epoch=1 digest=01234567
t=4 client "admin" controller=0 epoch=1
t=5 n0#6 stop
`
	if got := r.History().Text(); got != want {
		t.Fatalf("text:\n%s\nwant:\n%s", got, want)
	}
	var buf strings.Builder
	if err := EncodeQuorumJSON(&buf, r.History()); err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeQuorumJSON(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Text() != want || !decoded.Nodes[0].Broker {
		t.Fatalf("decoded history differs:\n%s", decoded.Text())
	}
	if _, err := DecodeQuorumJSON(strings.NewReader(`{"voters":[0],"nodes":[],"extra":1}`)); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("an unknown field decodes: %v", err)
	}
	if _, err := DecodeQuorumJSON(strings.NewReader(`{"voters":[],"nodes":[]}`)); !errors.Is(err, ErrInvalidQuorumHistory) {
		t.Fatalf("an invalid history decodes: %v", err)
	}
}

// TestCheckQuorumVerdictCountsFindings shows findings in a passing verdict.
func TestCheckQuorumVerdictCountsFindings(t *testing.T) {
	h := buildQuorumCase(t, quorumCase{records: append(slices.Clone(defaultToyEntries), "partition t 0 leader=4 isr=4")})
	result := CheckQuorum(h, QuorumCheckConfig{NewMetadataMachine: newToyMachine})
	if want := "OK: 4 nodes (3 voters), 71 events, 11 committed entries, 0 anomalies, 1 findings"; result.Verdict != want {
		t.Fatalf("verdict %q, want %q", result.Verdict, want)
	}
}

// TestDeposedLeaderMayAdvanceItsHighWatermarkLate: a leader of epoch 3 that
// has not heard of epoch 4 may advance its own high watermark, over entries
// a majority held in its epoch, after epoch 4's leader committed more. That
// is not a high watermark going back (Kafka checks the newest leader's);
// the newest leader's going back still is.
func TestDeposedLeaderMayAdvanceItsHighWatermarkLate(t *testing.T) {
	record := func(newestGoesBack bool) QuorumResult {
		r := NewQuorumRecorder([]int32{1, 2, 3})
		for id := int32(1); id <= 3; id++ {
			r.Start(id, 0, true)
			r.LogEnd(id, 0, 18)
		}
		r.State(2, 10, 3, QuorumRoleLeader, 2, 2)
		r.State(1, 20, 4, QuorumRoleLeader, 1, 1)
		r.State(3, 20, 4, QuorumRoleFollower, 1, 1)
		r.HighWatermark(1, 30, 18)
		r.HighWatermark(2, 40, 17)
		if newestGoesBack {
			r.HighWatermark(1, 50, 16)
		}
		return CheckQuorum(r.History(), QuorumCheckConfig{NewMetadataMachine: newToyMachine})
	}
	for _, a := range record(false).Anomalies {
		if a.Kind == QuorumAnomalyHighWatermarkWentBack {
			t.Fatalf("a deposed leader's late high watermark was reported: %s", a.Explanation)
		}
	}
	found := false
	for _, a := range record(true).Anomalies {
		found = found || a.Kind == QuorumAnomalyHighWatermarkWentBack
	}
	if !found {
		t.Fatal("the newest leader's high watermark going back was not reported")
	}
}
