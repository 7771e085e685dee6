package checker

import (
	"slices"
	"testing"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// testTopicID is the ID of topic "t" in the real-metadata tests.
var testTopicID = metadata.TopicID{0x7}

// realRecords is a metadata log in the real encoding: brokers 1 to 4
// registered and unfenced, topic t with partition 0 on brokers 1, 2 and 3,
// led by 1.
func realRecords() []metadata.Record {
	var records []metadata.Record
	for id := int32(1); id <= 4; id++ {
		records = append(records, &metadata.RegisterBrokerRecord{BrokerID: id, BrokerEpoch: 1, Fenced: true})
	}
	for id := int32(1); id <= 4; id++ {
		records = append(records, &metadata.UnfenceBrokerRecord{BrokerID: id, BrokerEpoch: 1})
	}
	return append(records,
		&metadata.TopicRecord{Name: "t", ID: testTopicID},
		&metadata.PartitionRecord{PartitionState: partitionState([]int32{1, 2, 3}, 1, 0, 0, false)})
}

func partitionState(isr []int32, leader, leaderEpoch, partitionEpoch int32, recovering bool) metadata.PartitionState {
	return metadata.PartitionState{TopicID: testTopicID, Partition: 0, Replicas: []int32{1, 2, 3}, ISR: isr,
		Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch, LeaderRecovering: recovering}
}

// realEntries is the log of a run: the leader-change entry, then records.
func realEntries(records []metadata.Record) [][]byte {
	entries := [][]byte{nil}
	for _, record := range records {
		entries = append(entries, metadata.Encode(record))
	}
	return entries
}

// realDigest is the digest of the image after the entries, as a node
// records it. The image refuses nothing in a correct run; a refused entry
// leaves it as it was, as on every node.
func realDigest(_ testing.TB, entries [][]byte) string {
	image := metadata.NewImage()
	for offset, data := range entries {
		_ = image.Apply(int64(offset), 1, data) // a refusal changes nothing
	}
	return imageDigest(image)
}

// TestCheckQuorumWithMetadataImage runs CheckQuorum with the adapter over
// the real metadata.Image (the simulator's configuration) on real records:
// a correct log passes, a refused record is reported, an unclean election
// is found, and a broker the log fences fails liveness.
func TestCheckQuorumWithMetadataImage(t *testing.T) {
	shrunk := &metadata.PartitionChangeRecord{PartitionState: partitionState([]int32{1}, 1, 0, 1, false)}
	cases := []struct {
		name     string
		extra    []metadata.Record
		then     func(r *QuorumRecorder, entries [][]byte)
		liveness *QuorumLiveness
		want     []QuorumAnomalyKind
		findings []QuorumFindingKind
	}{
		{name: "correct log, with snapshots", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50},
			then: func(r *QuorumRecorder, entries [][]byte) {
				r.Snapshot(1, 30, int64(len(entries)), 1, realDigest(nil, entries), SnapshotTaken)
				r.Snapshot(2, 30, 5, 1, realDigest(nil, entries[:5]), SnapshotTaken)
				r.LogStart(2, 31, 5)
			}},
		{name: "a snapshot that is not the committed state", want: []QuorumAnomalyKind{QuorumAnomalySnapshotDiffers},
			then: func(r *QuorumRecorder, entries [][]byte) {
				r.Snapshot(2, 30, 5, 1, realDigest(nil, entries[:4]), SnapshotTaken)
			}},
		{name: "fencing a leader is refused", extra: []metadata.Record{&metadata.FenceBrokerRecord{BrokerID: 1, BrokerEpoch: 1}},
			want: []QuorumAnomalyKind{QuorumAnomalyMetadataRejected}},
		{name: "near miss: fencing a broker that leads nothing", extra: []metadata.Record{&metadata.FenceBrokerRecord{BrokerID: 4, BrokerEpoch: 1}}},
		{name: "unclean election", findings: []QuorumFindingKind{QuorumFindingUncleanElection},
			extra: []metadata.Record{shrunk, &metadata.PartitionChangeRecord{PartitionState: partitionState([]int32{2}, 2, 1, 2, true)}}},
		{name: "near miss: a clean election", extra: []metadata.Record{
			&metadata.PartitionChangeRecord{PartitionState: partitionState([]int32{2, 3}, 2, 1, 1, false)}}},
		{name: "a running broker fenced after the heal", liveness: &QuorumLiveness{HealTime: 30, BoundNanos: 50},
			extra: []metadata.Record{&metadata.FenceBrokerRecord{BrokerID: 4, BrokerEpoch: 1}},
			want:  []QuorumAnomalyKind{QuorumAnomalyBrokerFencedAfterHeal}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := realEntries(append(realRecords(), c.extra...))
			r := baseQuorumRun(t, entries, realDigest)
			if c.then != nil {
				c.then(r, entries)
			}
			result := CheckQuorum(r.History(), QuorumCheckConfig{NewMetadataMachine: newImageMachine, Liveness: c.liveness})
			if got, want := quorumKinds(result), slices.Sorted(slices.Values(c.want)); !slices.Equal(got, want) {
				t.Fatalf("anomaly kinds %v, want %v:\n%s", got, want, result.Report())
			}
			var findings []QuorumFindingKind
			for _, f := range result.Findings {
				findings = append(findings, f.Kind)
				if f.Kind == QuorumFindingUncleanElection && !slices.Equal(f.Partitions, []string{"t-0"}) {
					t.Errorf("unclean election names %v, want [t-0]", f.Partitions)
				}
			}
			if !slices.Equal(findings, c.findings) {
				t.Fatalf("findings %v, want %v:\n%s", findings, c.findings, result.Report())
			}
		})
	}
}
