package checker

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Batches of partition t-0 as a correct leader wrote them: offsets 0-1 and
// 2 committed, 3-4 appended but not committed.
var (
	batchAB   = ReplicaBatch{BaseOffset: 0, LastOffset: 1, LeaderEpoch: 1, Hash: 0xab}
	batchC    = ReplicaBatch{BaseOffset: 2, LastOffset: 2, LeaderEpoch: 1, Hash: 0xc}
	batchDE   = ReplicaBatch{BaseOffset: 3, LastOffset: 4, LeaderEpoch: 1, Hash: 0xde}
	committed = []ReplicaBatch{batchAB, batchC}
	leaderLog = []ReplicaBatch{batchAB, batchC, batchDE}
)

// replicaHistory: "a", "b" at offsets 0 and 1 acknowledged with acks=1,
// "c" at offset 2 with acks=all, all durable; a consumer read offsets 0
// and 1 and the drain read 0 to 2. So the committed bound is 3, shown by
// the acks=all write and by the reads. The disks of nodes 1 to 3 were read
// after healing with the logs given (nil: the node was down).
func replicaHistory(logs ...[]ReplicaBatch) *History {
	b := newBuilder()
	b.produce(0, 10, 20, OutcomeOK, "a", 0).Acks = AcksLeader
	b.produce(0, 21, 30, OutcomeOK, "b", 1).Acks = AcksLeader
	b.produce(0, 31, 40, OutcomeOK, "c", 2)
	b.poll(1, 41, 50, 0, rec(0, "a"), rec(1, "b"))
	b.drain(100, 0, rec(0, "a"), rec(1, "b"), rec(2, "c"))
	b.end(3)
	b.h.Replication = &Replication{CommittedSurvives: true, DamagedReplicasRefetch: true}
	for i, batches := range logs {
		node := int32(i + 1)
		b.h.Replication.Nodes = append(b.h.Replication.Nodes, ReplicaNode{Node: node, Down: batches == nil})
		if batches != nil {
			first := int64(0) // an empty log's only segment starts at 0
			if len(batches) > 0 {
				first = batches[0].BaseOffset
			}
			b.h.Replication.Logs = append(b.h.Replication.Logs, ReplicaLog{Node: node, Topic: "t", Batches: batches, FirstSegment: first})
		}
	}
	return &b.h
}

// with returns batches with the one at index i replaced by b.
func with(batches []ReplicaBatch, i int, b ReplicaBatch) []ReplicaBatch {
	out := append([]ReplicaBatch(nil), batches...)
	out[i] = b
	return out
}

// TestReplicasAgreeBelowTheCommittedBound judges hand-made final replica
// logs against the bound the clients saw: every replica holds every
// offset below it, with identical batches; above it they may differ.
func TestReplicasAgreeBelowTheCommittedBound(t *testing.T) {
	otherC := ReplicaBatch{BaseOffset: 2, LastOffset: 2, LeaderEpoch: 1, Hash: 0xcc}
	tests := []struct {
		name   string
		edit   func(h *History)
		logs   [][]ReplicaBatch
		want   []AnomalyKind
		phrase string // in the first anomaly's explanation, or in the note
	}{
		{name: "identical replicas", logs: [][]ReplicaBatch{leaderLog, leaderLog, leaderLog}},
		{name: "a single replica (replication factor 1)", logs: [][]ReplicaBatch{leaderLog}},
		{name: "followers lack only what is not committed", logs: [][]ReplicaBatch{leaderLog, committed, committed}},
		{name: "uncommitted suffixes differ above the bound",
			logs: [][]ReplicaBatch{leaderLog, append(committed, ReplicaBatch{BaseOffset: 3, LastOffset: 3, LeaderEpoch: 2, Hash: 0xf}), committed}},
		{name: "a follower holds other bytes at a committed offset",
			logs: [][]ReplicaBatch{leaderLog, leaderLog, with(leaderLog, 1, otherC)},
			want: []AnomalyKind{AnomalyReplicaDiverged, AnomalyReplicaDiverged}, phrase: "node 1 holds the batch [2, 2] of leader epoch 1 (hash 0x000000000000000c) and node 3 holds the batch [2, 2] of leader epoch 1 (hash 0x00000000000000cc)"},
		{name: "a follower holds the batch from another leader epoch",
			logs: [][]ReplicaBatch{leaderLog, with(leaderLog, 1, ReplicaBatch{BaseOffset: 2, LastOffset: 2, LeaderEpoch: 2, Hash: 0xc})},
			want: []AnomalyKind{AnomalyReplicaDiverged}, phrase: "leader epoch 2"},
		{name: "batch boundaries differ below the bound",
			logs: [][]ReplicaBatch{leaderLog, {{BaseOffset: 0, LastOffset: 2, LeaderEpoch: 1, Hash: 0xabc}, batchDE}},
			want: []AnomalyKind{AnomalyReplicaDiverged}},
		{name: "a follower misses a committed batch",
			logs: [][]ReplicaBatch{leaderLog, leaderLog, {batchAB}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "node 3's copy does not hold offsets 2 to 2, below the committed bound 3 (op #2 (client 0) was acknowledged with acks=all offset 2)"},
		{name: "a follower misses the start of the log",
			logs: [][]ReplicaBatch{leaderLog, {batchC, batchDE}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "offsets 0 to 1"},
		{name: "a follower's committed batch fails its CRC",
			logs: [][]ReplicaBatch{leaderLog, {batchAB, {BaseOffset: 2, LastOffset: 2, LeaderEpoch: 1, Hash: 0x99, Invalid: true}}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "fails its CRC"},
		{name: "a follower with an empty log",
			logs: [][]ReplicaBatch{leaderLog, {}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "offsets 0 to 2"},
		{name: "a node down at the end is skipped and named",
			logs: [][]ReplicaBatch{leaderLog, nil, committed}, phrase: "node 2 was down at the end and was not read"},
		{name: "a damaged replica that fetched its data again",
			edit: func(h *History) { h.Replication.Logs[1].Damaged = true },
			logs: [][]ReplicaBatch{leaderLog, leaderLog}},
		{name: "a damaged replica that never fetched its data again",
			edit: func(h *History) { h.Replication.Logs[1].Damaged = true },
			logs: [][]ReplicaBatch{leaderLog, {batchAB, {BaseOffset: 2, LastOffset: 2, LeaderEpoch: 1, Hash: 0x99, Invalid: true}}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}},
		{name: "a damaged replica holding other bytes",
			edit: func(h *History) { h.Replication.Logs[1].Damaged = true },
			logs: [][]ReplicaBatch{leaderLog, with(leaderLog, 1, otherC)},
			want: []AnomalyKind{AnomalyReplicaDiverged}},
		{name: "a damaged replica without the promise to fetch again: not judged",
			edit: func(h *History) {
				h.Replication.Logs[1].Damaged, h.Replication.DamagedReplicasRefetch = true, false
			},
			logs:   [][]ReplicaBatch{leaderLog, {batchAB, otherC}, leaderLog},
			phrase: "damaged replicas not judged (no promise that they fetch their data again): t-0 on node 2"},
		{name: "without the promise, the undamaged replicas are still judged",
			edit: func(h *History) {
				h.Replication.Logs[1].Damaged, h.Replication.DamagedReplicasRefetch = true, false
			},
			logs: [][]ReplicaBatch{leaderLog, leaderLog, {batchAB}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "node 3's copy"},
		{name: "the only in-sync replica damaged: offline by design, not judged",
			edit: func(h *History) {
				h.Replication.Logs[0].Damaged, h.Replication.Logs[0].SoleInSync = true, true
			},
			logs: [][]ReplicaBatch{{batchAB, otherC}, {batchAB}}},
		{name: "a damaged replica that is not the only in-sync one is still judged",
			edit: func(h *History) { h.Replication.Logs[0].Damaged = true },
			logs: [][]ReplicaBatch{{batchAB, otherC}, {batchAB}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}},
		{name: "every replica damaged: not judged",
			edit: func(h *History) { h.Replication.Logs[0].Damaged, h.Replication.Logs[1].Damaged = true, true },
			logs: [][]ReplicaBatch{{batchAB}, {batchAB, otherC}}, phrase: "not judged, every replica damaged at rest: t-0"},
		{name: "reads do not count when committed records may be lost",
			edit: func(h *History) {
				h.Replication.CommittedSurvives = false
				h.Ops[2].Produce.Acks = AcksLeader // only reads show offset 2 committed now
			},
			logs: [][]ReplicaBatch{leaderLog, {batchAB}}},
		{name: "reads count when committed records survive",
			edit: func(h *History) { h.Ops[2].Produce.Acks = AcksLeader },
			logs: [][]ReplicaBatch{leaderLog, {batchAB}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "op #4 (client 9) read offset 2"},
		{name: "an acks=all write without a durability promise does not count",
			edit: func(h *History) {
				h.Replication.CommittedSurvives = false
				h.Ops[2].Produce.Durable = false
			},
			logs: [][]ReplicaBatch{leaderLog, {batchAB}}},
		{name: "retention may delete below the legal log start",
			edit: func(h *History) { h.Retention = &Retention{Bytes: -1, TimeCanAct: true, RecordBytesMax: 100} },
			logs: [][]ReplicaBatch{leaderLog, {batchDE}}},
		{name: "a replica's own retention deleted more than the leader's (sim seed 20032)",
			edit: func(h *History) { h.Retention = &Retention{Bytes: 1 << 20, RecordBytesMax: 100} },
			logs: [][]ReplicaBatch{leaderLog, {batchC, batchDE}}},
		{name: "retention left a replica only an empty segment above the bound (sim seed 30032)",
			edit: func(h *History) {
				h.Retention = &Retention{Bytes: -1, TimeCanAct: true, RecordBytesMax: 100}
				h.Replication.Logs[1].FirstSegment = 5
			},
			logs: [][]ReplicaBatch{leaderLog, {}}},
		{name: "without retention an empty replica misses what is committed",
			edit: func(h *History) { h.Replication.Logs[1].FirstSegment = 5 },
			logs: [][]ReplicaBatch{leaderLog, {}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "offsets 0 to 2"},
		{name: "with retention, a hole after a replica's oldest batch is still missing",
			edit: func(h *History) { h.Retention = &Retention{Bytes: 1 << 20, RecordBytesMax: 100} },
			logs: [][]ReplicaBatch{leaderLog, {batchAB, batchDE}},
			want: []AnomalyKind{AnomalyReplicaMissingCommitted}, phrase: "offsets 2 to 2"},
		{name: "retention deletes nothing that two replicas hold differently",
			edit: func(h *History) { h.Retention = &Retention{Bytes: -1, TimeCanAct: true, RecordBytesMax: 100} },
			logs: [][]ReplicaBatch{leaderLog, {batchAB, otherC}},
			want: []AnomalyKind{AnomalyReplicaDiverged}},
		{name: "a partition no client saw committed",
			edit: func(h *History) {
				h.Replication.Logs = append(h.Replication.Logs, ReplicaLog{Node: 1, Topic: "u", Batches: []ReplicaBatch{batchAB}},
					ReplicaLog{Node: 2, Topic: "u", Batches: []ReplicaBatch{otherC}})
			},
			logs: [][]ReplicaBatch{leaderLog, leaderLog}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := replicaHistory(tt.logs...)
			if tt.edit != nil {
				tt.edit(h)
			}
			r := mustCheck(t, h, tt.want...)
			stat := r.Checks[len(r.Checks)-1]
			if stat.Name != "replicas" || stat.Anomalies != len(tt.want) {
				t.Errorf("last check stat %+v, want the replicas check with %d anomalies", stat, len(tt.want))
			}
			if tt.phrase == "" {
				return
			}
			if len(tt.want) > 0 {
				mentions(t, r.Anomalies[0], tt.phrase)
			} else if !strings.Contains(r.Report(), "  replicas: ") || !strings.Contains(stat.Note, tt.phrase) {
				t.Errorf("note %q and report\n%s\nlack %q", stat.Note, r.Report(), tt.phrase)
			}
		})
	}
}

// TestReplicaChecksNeedEvidence: without replica evidence the replica
// checks are not listed at all, and with nodes listed but no log read they
// judge nothing and say why.
func TestReplicaChecksNeedEvidence(t *testing.T) {
	h := replicaHistory()
	h.Replication = nil
	r := mustCheck(t, h)
	for _, c := range r.Checks {
		if c.Name == "replicas" || c.Name == "high-watermark" {
			t.Errorf("check %s listed without replica evidence", c.Name)
		}
	}
	h.Replication = &Replication{CommittedSurvives: true}
	r = mustCheck(t, h)
	if stat := r.Checks[len(r.Checks)-1]; stat.Checked != 0 || !strings.Contains(stat.Note, "not read") {
		t.Errorf("stat %+v, want nothing checked and a note saying the logs were not read", stat)
	}
}

// TestReplicationValidate refuses replica evidence that no correct
// simulator records, and round-trips a valid one through JSON.
func TestReplicationValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Replication)
	}{
		{"overlapping batches", func(r *Replication) { r.Logs[0].Batches = []ReplicaBatch{batchAB, batchAB} }},
		{"a batch ending before it begins", func(r *Replication) { r.Logs[0].Batches = []ReplicaBatch{{BaseOffset: 3, LastOffset: 2}} }},
		{"a log of a node that was down", func(r *Replication) { r.Nodes[0].Down = true }},
		{"a log of a node not listed", func(r *Replication) { r.Logs[0].Node = 7 }},
		{"a replica listed twice", func(r *Replication) { r.Logs[1].Node = 1 }},
		{"nodes out of order", func(r *Replication) { r.Nodes[0], r.Nodes[1] = r.Nodes[1], r.Nodes[0] }},
		{"a negative partition", func(r *Replication) { r.Logs[0].Partition = -1 }},
		{"a fetch answered before it was sent", func(r *Replication) { r.Fetches[0].Received = 1 }},
		{"a fetch with an epoch below -1", func(r *Replication) { r.Fetches[0].LeaderEpoch = -2 }},
		{"a fetch without a topic", func(r *Replication) { r.Fetches[0].Topic = "" }},
	}
	valid := func() *History {
		h := replicaHistory(leaderLog, leaderLog)
		h.Replication.Fetches = []Fetch{{Client: 1, Topic: "t", LeaderEpoch: 1, HighWatermark: 2, Sent: 41, Received: 50}}
		return h
	}
	var data bytes.Buffer
	if err := EncodeJSON(&data, valid()); err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeJSON(&data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if again, _ := json.Marshal(decoded.Replication); string(again) != mustMarshal(t, valid().Replication) {
		t.Errorf("round trip changed the replica evidence: %s", again)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := valid()
			tt.edit(h.Replication)
			if r := Check(h, Options{}); r.Status != StatusInvalid {
				t.Errorf("status %s, want invalid", r.Status)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
