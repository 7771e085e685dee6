package metadata

import (
	"reflect"
	"testing"
)

// TestElectLeaderChoosesInKafkasOrder gives ElectLeader partitions whose
// leader is gone against the base image (brokers 1 to 3 live, 4 fenced, 9
// unknown) and checks the whole change it returns: ISR first, then ELR, then
// (only when unclean) any live replica marked recovering, else no leader;
// the leader epoch bumps with the leader and the partition epoch always.
func TestElectLeaderChoosesInKafkasOrder(t *testing.T) {
	state := func(replicas, isr, elr []int32, leader int32) PartitionState {
		return PartitionState{TopicID: testTopicID, Replicas: replicas, ISR: isr, ELR: elr, Leader: leader, LeaderEpoch: 3, PartitionEpoch: 5}
	}
	cases := []struct {
		name      string
		partition PartitionState
		unclean   bool
		ok        bool
		want      PartitionState
	}{
		{"live leader needs nothing", state([]int32{1, 2}, []int32{1, 2}, nil, 1), true, false, PartitionState{}},
		{"fenced leader: first live ISR member in replica order", state([]int32{4, 3, 2}, []int32{4, 2, 3}, []int32{}, 4), false, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{4, 3, 2}, ISR: []int32{4, 2, 3}, ELR: []int32{}, Leader: 3, LeaderEpoch: 4, PartitionEpoch: 6}},
		{"unknown leader: ISR", state([]int32{9, 1}, []int32{9, 1}, []int32{}, 9), false, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{9, 1}, ISR: []int32{9, 1}, ELR: []int32{}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 6}},
		{"no live ISR member: ELR", state([]int32{4, 2, 3}, []int32{4}, []int32{2, 3}, NoLeader), false, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{4, 2, 3}, ISR: []int32{2}, ELR: []int32{3}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 6}},
		{"clean only: stays leaderless", state([]int32{4, 2}, []int32{4}, []int32{}, NoLeader), false, false, PartitionState{}},
		{"unclean: any live replica, recovering", state([]int32{4, 2}, []int32{4}, []int32{}, NoLeader), true, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{4, 2}, ISR: []int32{2}, ELR: []int32{}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 6, LeaderRecovering: true}},
		{"no candidate: leaderless, ISR kept", state([]int32{4, 2}, []int32{4}, []int32{}, 4), false, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{4, 2}, ISR: []int32{4}, ELR: []int32{}, Leader: NoLeader, LeaderEpoch: 4, PartitionEpoch: 6}},
		{"unclean with nobody live: leaderless", state([]int32{4, 9}, []int32{4}, []int32{}, 4), true, true,
			PartitionState{TopicID: testTopicID, Replicas: []int32{4, 9}, ISR: []int32{4}, ELR: []int32{}, Leader: NoLeader, LeaderEpoch: 4, PartitionEpoch: 6}},
	}
	image := baseImage(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			change, ok := ElectLeader(c.partition, image, c.unclean)
			if ok != c.ok {
				t.Fatalf("ok = %t, want %t (change %+v)", ok, c.ok, change)
			}
			if ok && !reflect.DeepEqual(change.PartitionState, c.want) {
				t.Errorf("change\n %+v\nwant\n %+v", change.PartitionState, c.want)
			}
		})
	}
}

// TestFenceBrokerRecordsMoveLeadershipsFirst fences broker 1 of the base
// image, to which a second partition (replicas 2,1,3, all in sync, leader 2)
// is added: the sole-ISR partition it led moves to its ELR member, the other
// only loses it from its ISR with the same leader epoch, and the fence comes
// last. Applying the records must succeed and keep every invariant.
func TestFenceBrokerRecordsMoveLeadershipsFirst(t *testing.T) {
	image := baseImage(t)
	second := PartitionState{TopicID: testTopicID, Partition: 1, Replicas: []int32{2, 1, 3}, ISR: []int32{2, 1, 3}, ELR: []int32{}, Leader: 2}
	if err := image.ApplyRecord(10, 1, &PartitionRecord{second}); err != nil {
		t.Fatal(err)
	}
	records, err := FenceBrokerRecords(image, 1, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		&PartitionChangeRecord{PartitionState{TopicID: testTopicID, Replicas: []int32{1, 2, 3}, ISR: []int32{2}, ELR: []int32{}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}},
		&PartitionChangeRecord{PartitionState{TopicID: testTopicID, Partition: 1, Replicas: []int32{2, 1, 3}, ISR: []int32{2, 3}, ELR: []int32{}, Leader: 2, PartitionEpoch: 1}},
		&FenceBrokerRecord{BrokerID: 1, BrokerEpoch: 10},
	}
	if !reflect.DeepEqual(records, want) {
		t.Fatalf("records\n %+v\nwant\n %+v", records, want)
	}
	for index, record := range records {
		if err := image.Apply(int64(11+index), 1, Encode(record)); err != nil {
			t.Fatal(err)
		}
	}
	if err := image.Check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int32{1, 9} {
		if _, err := FenceBrokerRecords(image, bad, func(string) bool { return false }); err == nil {
			t.Errorf("fencing broker %d (fenced or unknown) succeeded", bad)
		}
	}
}
