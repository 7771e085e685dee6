package metadata

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
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

// TestControlledShutdownRecordsLeaveTheBrokerLeadingNothing starts the
// controlled shutdown of broker 1 of the base image plus a partition it
// follows in the ISR: its leadership moves to the ELR member, it leaves the
// other ISR, the ControlledShutdownRecord comes last, and once applied in
// one batch the broker is not live, so no election picks it; a second
// shutdown of it, or one of a fenced broker, is refused.
func TestControlledShutdownRecordsLeaveTheBrokerLeadingNothing(t *testing.T) {
	image := baseImage(t)
	second := PartitionState{TopicID: testTopicID, Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, ELR: []int32{}, Leader: 2}
	if err := image.ApplyRecord(10, 1, &PartitionRecord{second}); err != nil {
		t.Fatal(err)
	}
	records, err := ControlledShutdownRecords(image, 1, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 3 || records[2].Kind() != ControlledShutdownKind {
		t.Fatalf("records %+v, want two changes and the shutdown record", records)
	}
	if err := image.Apply(11, 1, Encode(&BatchRecord{Records: records})); err != nil {
		t.Fatal(err)
	}
	if image.Leads(1) || image.Live(1) {
		t.Error("a broker in controlled shutdown leads or is live")
	}
	partition, _ := image.Partition(testTopicID, 1)
	if !reflect.DeepEqual(partition.ISR, []int32{2}) {
		t.Errorf("ISR %v, want the shutting-down broker removed", partition.ISR)
	}
	for _, bad := range []int32{1, 4, 9} {
		if _, err := ControlledShutdownRecords(image, bad, func(string) bool { return false }); err == nil {
			t.Errorf("a controlled shutdown of broker %d (shutting down, fenced or unknown) was allowed", bad)
		}
	}
	fence, err := FenceBrokerRecords(image, 1, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if err := image.Apply(12, 1, Encode(&BatchRecord{Records: fence})); err != nil {
		t.Fatal(err)
	}
	if broker, _ := image.Broker(1); !broker.Fenced || broker.InControlledShutdown {
		t.Errorf("after the fence: %+v, want fenced and no longer shutting down", broker)
	}
}

// TestPreferredLeaderChange covers the three answers: a change to the
// preferred replica when it is live and in sync (new leader epoch),
// ELECTION_NOT_NEEDED when it already leads, and
// PREFERRED_LEADER_NOT_AVAILABLE when it is fenced or out of the ISR.
func TestPreferredLeaderChange(t *testing.T) {
	image := baseImage(t)
	state := func(replicas, isr []int32, leader int32) PartitionState {
		return PartitionState{TopicID: testTopicID, Replicas: replicas, ISR: isr, ELR: []int32{}, Leader: leader, LeaderEpoch: 2, PartitionEpoch: 3}
	}
	cases := []struct {
		name      string
		partition PartitionState
		want      error
	}{
		{"preferred in sync", state([]int32{2, 1}, []int32{1, 2}, 1), nil},
		{"preferred for a leaderless partition", state([]int32{2, 1}, []int32{2}, NoLeader), nil},
		{"preferred leads", state([]int32{1, 2}, []int32{1, 2}, 1), kerr.ElectionNotNeeded},
		{"preferred out of the ISR", state([]int32{2, 1}, []int32{1}, 1), kerr.PreferredLeaderNotAvailable},
		{"preferred fenced", state([]int32{4, 1}, []int32{1, 4}, 1), kerr.PreferredLeaderNotAvailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			change, err := PreferredLeaderChange(c.partition, image)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if err != nil {
				return
			}
			want := c.partition
			want.Leader, want.LeaderEpoch, want.PartitionEpoch = c.partition.Replicas[0], 3, 4
			if !reflect.DeepEqual(change.PartitionState, want) {
				t.Errorf("change %+v, want %+v", change.PartitionState, want)
			}
		})
	}
}

// TestOfflineReplicaChanges takes broker 2's replica out of service in
// partitions of every shape against the base image (brokers 1 to 3 live):
// it leaves the ISR and the ELR, a partition it led gets another leader
// from the ISR, one where it is the last ISR member keeps it as it is,
// and one where it is already out needs no change.
func TestOfflineReplicaChanges(t *testing.T) {
	state := func(isr, elr []int32, leader int32) PartitionState {
		return PartitionState{TopicID: testTopicID, Replicas: []int32{2, 1, 3}, ISR: isr, ELR: elr, Leader: leader, LeaderEpoch: 3, PartitionEpoch: 5}
	}
	want := func(isr, elr []int32, leader, leaderEpoch int32) PartitionState {
		s := state(isr, elr, leader)
		s.LeaderEpoch, s.PartitionEpoch = leaderEpoch, 6
		return s
	}
	cases := []struct {
		name      string
		partition PartitionState
		ok        bool
		want      PartitionState
	}{
		{"follower in the ISR", state([]int32{1, 2, 3}, []int32{}, 1), true, want([]int32{1, 3}, []int32{}, 1, 3)},
		{"follower in the ELR", state([]int32{1}, []int32{2}, 1), true, want([]int32{1}, []int32{}, 1, 3)},
		{"leader: the next ISR member leads", state([]int32{2, 3}, []int32{}, 2), true, want([]int32{3}, []int32{}, 3, 4)},
		{"last ISR member and leader: kept", state([]int32{2}, []int32{}, 2), false, PartitionState{}},
		{"already out of service", state([]int32{1, 3}, []int32{}, 1), false, PartitionState{}},
	}
	image := baseImage(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			change, ok := offlineChange(c.partition, image, false, 2, func(id int32) bool { return id != 2 && image.live(id) })
			if ok != c.ok {
				t.Fatalf("ok = %t, want %t (change %+v)", ok, c.ok, change)
			}
			if ok && !reflect.DeepEqual(change.PartitionState, c.want) {
				t.Errorf("change\n %+v\nwant\n %+v", change.PartitionState, c.want)
			}
		})
	}
	if a, b := ReplicaDirectoryID(TopicID{1}, 0), ReplicaDirectoryID(TopicID{1}, 1); a == b || a != [16]byte(TopicID{1}) {
		t.Errorf("directory ids %x and %x: want the topic id for partition 0 and distinct ids", a, b)
	}
}
