package metadata

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var otherTopicID = TopicID{0: 9, 1: 9}

// baseImage is the starting point of the table tests: brokers 1 to 3
// unfenced (epochs 10, 20, 30), broker 4 fenced (epoch 40), and topic
// "orders" with one partition: replicas 1,2,3, ISR 1, ELR 2, leader 1.
func baseImage(t *testing.T) *Image {
	t.Helper()
	records := []Record{
		&RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 10},
		&RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 20},
		&RegisterBrokerRecord{BrokerID: 3, BrokerEpoch: 30},
		&RegisterBrokerRecord{BrokerID: 4, BrokerEpoch: 40, Fenced: true},
		&TopicRecord{Name: "orders", ID: testTopicID},
		&PartitionRecord{basePartition()},
	}
	image := NewImage()
	for offset, record := range records {
		if err := image.Apply(int64(offset), 1, Encode(record)); err != nil {
			t.Fatalf("base record %d: %v", offset, err)
		}
	}
	return image
}

func basePartition() PartitionState {
	return PartitionState{TopicID: testTopicID, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, ELR: []int32{2}, Leader: 1}
}

// change returns a change of the base partition with the next partition
// epoch, adjusted by mutate.
func change(mutate func(state *PartitionState)) *PartitionChangeRecord {
	state := basePartition()
	state.PartitionEpoch = 1
	mutate(&state)
	return &PartitionChangeRecord{state}
}

func partitionWith(mutate func(state *PartitionState)) *PartitionRecord {
	state := basePartition()
	state.Partition = 1
	mutate(&state)
	return &PartitionRecord{state}
}

func topicConfig(name string, value *string) *ConfigRecord {
	return &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: "orders"}, Name: name, Value: value}
}

func brokerConfig(broker string) *ConfigRecord {
	return &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceTypeBroker, Name: broker}, Name: "x", Value: &testValue}
}

// TestApplyAcceptsValidRecords applies one valid record of every kind (and
// every legal kind of partition change) to the base image and checks the
// resulting state and the invariants.
func TestApplyAcceptsValidRecords(t *testing.T) {
	cases := []struct {
		name   string
		record Record
		check  func(image *Image) bool
	}{
		{"register a new broker fenced", &RegisterBrokerRecord{BrokerID: 5, BrokerEpoch: 50, Fenced: true,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "b5", Port: 9092}}},
			func(image *Image) bool {
				b, _ := image.Broker(5)
				return reflect.DeepEqual(b, Broker{ID: 5, Epoch: 50, Fenced: true, Listeners: []Listener{{Name: "PLAINTEXT", Host: "b5", Port: 9092}}})
			}},
		{"register a new incarnation", &RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 21, Fenced: true},
			func(image *Image) bool { b, _ := image.Broker(2); return b.Epoch == 21 && b.Fenced }},
		{"fence a broker that leads nothing", &FenceBrokerRecord{BrokerID: 2, BrokerEpoch: 20},
			func(image *Image) bool { b, _ := image.Broker(2); return b.Fenced }},
		{"unfence", &UnfenceBrokerRecord{BrokerID: 4, BrokerEpoch: 40},
			func(image *Image) bool { b, _ := image.Broker(4); return !b.Fenced }},
		{"topic", &TopicRecord{Name: "a.b_c-D9", ID: otherTopicID},
			func(image *Image) bool {
				topic, ok := image.TopicByName("a.b_c-D9")
				return ok && topic.ID == otherTopicID
			}},
		{"next partition", partitionWith(func(s *PartitionState) {}),
			func(image *Image) bool { topic, _ := image.TopicByID(testTopicID); return len(topic.Partitions) == 2 }},
		{"shrink the ISR keeps the leader epoch", change(func(s *PartitionState) { s.ISR = []int32{1}; s.ELR = []int32{} }),
			func(image *Image) bool {
				p, _ := image.Partition(testTopicID, 0)
				return p.LeaderEpoch == 0 && p.PartitionEpoch == 1
			}},
		{"new leader from the ELR bumps the leader epoch", change(func(s *PartitionState) { s.Leader, s.ISR, s.ELR, s.LeaderEpoch = 2, []int32{2}, []int32{}, 1 }),
			func(image *Image) bool {
				p, _ := image.Partition(testTopicID, 0)
				return p.Leader == 2 && p.LeaderEpoch == 1
			}},
		{"removing a replica bumps the leader epoch", change(func(s *PartitionState) { s.Replicas, s.LeaderEpoch = []int32{1, 2}, 1 }),
			func(image *Image) bool {
				p, _ := image.Partition(testTopicID, 0)
				return len(p.Replicas) == 2 && p.LeaderEpoch == 1
			}},
		{"unclean election recorded as recovering", change(func(s *PartitionState) {
			s.Leader, s.ISR, s.ELR, s.LeaderEpoch, s.LeaderRecovering = 3, []int32{3}, []int32{}, 1, true
		}), func(image *Image) bool {
			p, _ := image.Partition(testTopicID, 0)
			return p.Leader == 3 && p.LeaderRecovering
		}},
		{"leaderless", change(func(s *PartitionState) { s.Leader, s.LeaderEpoch = NoLeader, 1 }),
			func(image *Image) bool { p, _ := image.Partition(testTopicID, 0); return p.Leader == NoLeader }},
		{"set a topic config", topicConfig("retention.ms", &testValue),
			func(image *Image) bool {
				return slices.Equal(image.Configs(ConfigResource{kmsg.ConfigResourceTypeTopic, "orders"}), []ConfigEntry{{"retention.ms", testValue}})
			}},
		{"delete a config that is not set", topicConfig("retention.ms", nil),
			func(image *Image) bool {
				return len(image.Configs(ConfigResource{kmsg.ConfigResourceTypeTopic, "orders"})) == 0
			}},
		{"set the cluster-wide broker default", brokerConfig(""),
			func(image *Image) bool {
				return len(image.Configs(ConfigResource{kmsg.ConfigResourceTypeBroker, ""})) == 1
			}},
		{"set a config of a broker not yet registered", brokerConfig("7"),
			func(image *Image) bool {
				return len(image.Configs(ConfigResource{kmsg.ConfigResourceTypeBroker, "7"})) == 1
			}},
		{"register keeps the incarnation id", &RegisterBrokerRecord{BrokerID: 5, BrokerEpoch: 50, IncarnationID: [16]byte{1}, Fenced: true},
			func(image *Image) bool { b, _ := image.Broker(5); return b.IncarnationID == [16]byte{1} }},
		{"controlled shutdown of a broker that leads nothing", &ControlledShutdownRecord{BrokerID: 2, BrokerEpoch: 20},
			func(image *Image) bool {
				b, _ := image.Broker(2)
				return b.InControlledShutdown && !image.Live(2) && image.Live(3)
			}},
		{"remove a topic with its partitions and configs", &BatchRecord{Records: []Record{topicConfig("retention.ms", &testValue), &RemoveTopicRecord{ID: testTopicID}}},
			func(image *Image) bool {
				_, byName := image.TopicByName("orders")
				_, byID := image.Partition(testTopicID, 0)
				return !byName && !byID && len(image.Configs(ConfigResource{kmsg.ConfigResourceTypeTopic, "orders"})) == 0
			}},
		{"a removed topic's name is free at once", &BatchRecord{Records: []Record{&RemoveTopicRecord{ID: testTopicID}, &TopicRecord{Name: "orders", ID: otherTopicID}}},
			func(image *Image) bool { topic, _ := image.TopicByName("orders"); return topic.ID == otherTopicID }},
		{"a batch applies its records in order", &BatchRecord{Records: []Record{
			&TopicRecord{Name: "new", ID: otherTopicID},
			&PartitionRecord{PartitionState{TopicID: otherTopicID, Replicas: []int32{2}, ISR: []int32{2}, ELR: []int32{}, Leader: 2}},
			&PartitionRecord{PartitionState{TopicID: otherTopicID, Partition: 1, Replicas: []int32{3}, ISR: []int32{3}, ELR: []int32{}, Leader: 3}},
		}}, func(image *Image) bool { topic, _ := image.TopicByName("new"); return len(topic.Partitions) == 2 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			image := baseImage(t)
			if err := image.Apply(100, 2, Encode(c.record)); err != nil {
				t.Fatal(err)
			}
			if !c.check(image) {
				t.Error("the image does not show the record")
			}
			if image.AppliedOffset() != 100 || image.AppliedEpoch() != 2 {
				t.Errorf("applied %d in epoch %d, want 100 in 2", image.AppliedOffset(), image.AppliedEpoch())
			}
			if err := image.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestApplyRejectsRecordsThatDoNotFit applies records that break a rule to
// the base image and requires for each an error wrapping ErrRejected and an
// image unchanged byte for byte (applied offset included).
func TestApplyRejectsRecordsThatDoNotFit(t *testing.T) {
	cases := []struct {
		name   string
		record Record
		want   string
	}{
		{"negative broker id", &RegisterBrokerRecord{BrokerID: -2, BrokerEpoch: 1}, "is negative"},
		{"negative broker epoch", &RegisterBrokerRecord{BrokerID: 5, BrokerEpoch: -1}, "epoch -1 is negative"},
		{"broker epoch not after the registered one", &RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 20, Fenced: true}, "not after its registered epoch"},
		{"re-register a leader fenced", &RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 11, Fenced: true}, "cannot be fenced while it leads"},
		{"fence an unknown broker", &FenceBrokerRecord{BrokerID: 9, BrokerEpoch: 1}, "is not registered"},
		{"fence a stale incarnation", &FenceBrokerRecord{BrokerID: 2, BrokerEpoch: 19}, "is not its registered epoch"},
		{"fence a fenced broker", &FenceBrokerRecord{BrokerID: 4, BrokerEpoch: 40}, "already fenced=true"},
		{"fence a leader", &FenceBrokerRecord{BrokerID: 1, BrokerEpoch: 10}, "cannot be fenced while it leads"},
		{"unfence an unfenced broker", &UnfenceBrokerRecord{BrokerID: 2, BrokerEpoch: 20}, "already fenced=false"},
		{"unfence a stale incarnation", &UnfenceBrokerRecord{BrokerID: 4, BrokerEpoch: 39}, "is not its registered epoch"},
		{"empty topic name", &TopicRecord{Name: "", ID: otherTopicID}, "is empty"},
		{"topic name ..", &TopicRecord{Name: "..", ID: otherTopicID}, "is empty"},
		{"illegal character in a topic name", &TopicRecord{Name: "a/b", ID: otherTopicID}, "illegal character"},
		{"zero topic id", &TopicRecord{Name: "new"}, "zero topic id"},
		{"duplicate topic name", &TopicRecord{Name: "orders", ID: otherTopicID}, "already exists"},
		{"duplicate topic id", &TopicRecord{Name: "new", ID: testTopicID}, "already taken"},
		{"partition of an unknown topic", partitionWith(func(s *PartitionState) { s.TopicID = otherTopicID; s.Partition = 0 }), "unknown topic id"},
		{"partition not next", partitionWith(func(s *PartitionState) { s.Partition = 2 }), "is not the next partition"},
		{"existing partition again", partitionWith(func(s *PartitionState) { s.Partition = 0 }), "is not the next partition"},
		{"leader epoch above partition epoch", partitionWith(func(s *PartitionState) { s.LeaderEpoch = 1 }), "must satisfy"},
		{"negative leader epoch", partitionWith(func(s *PartitionState) { s.LeaderEpoch = -1 }), "must satisfy"},
		{"no replicas", partitionWith(func(s *PartitionState) { s.Replicas, s.ISR, s.ELR, s.Leader = nil, nil, nil, NoLeader }), "0 replicas"},
		{"unregistered replica", partitionWith(func(s *PartitionState) { s.Replicas = []int32{1, 2, 3, 9} }), "not a registered broker"},
		{"duplicate replica", partitionWith(func(s *PartitionState) { s.Replicas = []int32{1, 2, 2} }), "replica 2 appears twice"},
		{"ISR member not a replica", partitionWith(func(s *PartitionState) { s.ISR = []int32{1, 4} }), "ISR member 4 is not a replica"},
		{"duplicate ISR member", partitionWith(func(s *PartitionState) { s.ISR = []int32{1, 1} }), "ISR member 1 appears twice"},
		{"ELR member not a replica", partitionWith(func(s *PartitionState) { s.ELR = []int32{4} }), "ELR member 4 is not a replica"},
		{"ELR overlapping the ISR", partitionWith(func(s *PartitionState) { s.ELR = []int32{1} }), "both the ISR and the ELR"},
		{"created leader not in the ISR", partitionWith(func(s *PartitionState) { s.Leader = 2 }), "not in the ISR"},
		{"created with a fenced leader", partitionWith(func(s *PartitionState) { s.Replicas, s.ISR, s.Leader = []int32{4, 1}, []int32{4}, 4; s.ELR = nil }), "is fenced"},
		{"change of an unknown topic", change(func(s *PartitionState) { s.TopicID = otherTopicID }), "unknown topic id"},
		{"change of an unknown partition", change(func(s *PartitionState) { s.Partition = 1 }), "unknown partition"},
		{"change without a new partition epoch", change(func(s *PartitionState) { s.PartitionEpoch = 0 }), "not the next epoch"},
		{"partition epoch skips", change(func(s *PartitionState) { s.PartitionEpoch = 2 }), "not the next epoch"},
		{"leader epoch goes back", change(func(s *PartitionState) { s.LeaderEpoch = -1 }), "leader epoch -1, want 0"},
		{"new leader without a new leader epoch", change(func(s *PartitionState) { s.Leader, s.ISR, s.ELR = 2, []int32{2}, nil }), "leader epoch 0, want 1"},
		{"new leader epoch without a new leader", change(func(s *PartitionState) { s.LeaderEpoch = 1 }), "leader epoch 1, want 0"},
		{"removed replica without a new leader epoch", change(func(s *PartitionState) { s.Replicas = []int32{1, 2} }), "leader epoch 0, want 1"},
		{"leader not in the ISR", change(func(s *PartitionState) { s.Leader, s.LeaderEpoch = 2, 1 }), "not in the ISR"},
		{"fenced leader", change(func(s *PartitionState) {
			s.Replicas, s.ISR, s.ELR, s.Leader, s.LeaderEpoch = []int32{1, 2, 3, 4}, []int32{4}, nil, 4, 1
		}), "is fenced"},
		{"unclean election not recorded", change(func(s *PartitionState) { s.Leader, s.ISR, s.ELR, s.LeaderEpoch = 3, []int32{3}, nil, 1 }), "must mark the leader recovering"},
		{"recovering without an unclean election", change(func(s *PartitionState) { s.LeaderRecovering = true }), "only an unclean election"},
		{"recovering leader not alone in the ISR", change(func(s *PartitionState) {
			s.Leader, s.ISR, s.ELR, s.LeaderEpoch, s.LeaderRecovering = 3, []int32{3, 1}, nil, 1, true
		}), "alone in the ISR"},
		{"empty config name", topicConfig("", &testValue), "config name"},
		{"config of an unknown topic", &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: "nope"}, Name: "x", Value: &testValue}, "unknown topic"},
		{"config of a broker named by a word", brokerConfig("two"), "not a broker id"},
		{"config of a broker id with a leading zero", brokerConfig("02"), "not a broker id"},
		{"config of an unsupported resource", &ConfigRecord{Resource: ConfigResource{Type: kmsg.ConfigResourceType(32), Name: "g"}, Name: "x", Value: &testValue}, "unsupported resource type"},
		{"controlled shutdown of a leader", &ControlledShutdownRecord{BrokerID: 1, BrokerEpoch: 10}, "cannot be fenced while it leads"},
		{"controlled shutdown of a fenced broker", &ControlledShutdownRecord{BrokerID: 4, BrokerEpoch: 40}, "cannot start a controlled shutdown"},
		{"controlled shutdown of a stale incarnation", &ControlledShutdownRecord{BrokerID: 2, BrokerEpoch: 19}, "is not its registered epoch"},
		{"controlled shutdown of an unknown broker", &ControlledShutdownRecord{BrokerID: 9, BrokerEpoch: 1}, "is not registered"},
		{"remove an unknown topic", &RemoveTopicRecord{ID: otherTopicID}, "unknown topic id"},
		{"a batch whose last record does not fit changes nothing", &BatchRecord{Records: []Record{
			&TopicRecord{Name: "new", ID: otherTopicID},
			&FenceBrokerRecord{BrokerID: 2, BrokerEpoch: 20},
			&PartitionRecord{PartitionState{TopicID: otherTopicID, Replicas: []int32{2}, ISR: []int32{2}, ELR: []int32{}, Leader: 2}},
		}}, "batch record 2 of 3"},
		{"a batch of one record that does not fit", &BatchRecord{Records: []Record{&RemoveTopicRecord{ID: otherTopicID}}}, "unknown topic id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := requireRejected(t, baseImage(t), 100, 2, Encode(c.record), ErrRejected)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("rejected for %q, want a reason containing %q", err, c.want)
			}
		})
	}
}

// TestApplyRejectsEntriesOutOfPlace covers the entry's position and bytes:
// an offset already applied, an epoch that goes back and undecodable data.
func TestApplyRejectsEntriesOutOfPlace(t *testing.T) {
	valid := Encode(&RegisterBrokerRecord{BrokerID: 5, BrokerEpoch: 50, Fenced: true})
	cases := []struct {
		name   string
		offset int64
		epoch  int32
		data   []byte
		want   error
	}{
		{"offset already applied", 5, 2, valid, ErrRejected},
		{"epoch goes back", 100, 0, valid, ErrRejected},
		{"leader-change entry at an old offset", 5, 2, nil, ErrRejected},
		{"undecodable bytes", 100, 2, []byte{1, 2}, ErrMalformed},
		{"empty batch", 100, 2, Encode(&BatchRecord{}), ErrMalformed},
		{"batch in a batch", 100, 2, Encode(&BatchRecord{Records: []Record{&BatchRecord{Records: []Record{&RemoveTopicRecord{ID: testTopicID}}}}}), ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireRejected(t, baseImage(t), c.offset, c.epoch, c.data, c.want)
		})
	}
}

// TestLeaderChangeEntryOnlyAdvances applies Raft's empty leader-change entry.
func TestLeaderChangeEntryOnlyAdvances(t *testing.T) {
	image := baseImage(t)
	before := image.Snapshot()
	if err := image.Apply(6, 3, nil); err != nil {
		t.Fatal(err)
	}
	if image.AppliedOffset() != 6 || image.AppliedEpoch() != 3 {
		t.Fatalf("applied %d in %d, want 6 in 3", image.AppliedOffset(), image.AppliedEpoch())
	}
	if after := image.Snapshot(); !bytes.Equal(before[14:], after[14:]) {
		t.Error("a leader-change entry changed the records of the image")
	}
}

func requireRejected(t *testing.T, image *Image, offset int64, epoch int32, data []byte, want error) error {
	t.Helper()
	before := image.Snapshot()
	err := image.Apply(offset, epoch, data)
	if !errors.Is(err, want) {
		t.Fatalf("Apply = %v, want an error wrapping %v", err, want)
	}
	if !bytes.Equal(image.Snapshot(), before) {
		t.Error("a rejected record changed the image")
	}
	if err := image.Check(); err != nil {
		t.Error(err)
	}
	return err
}

// TestBatchBuiltInMemoryIsValidatedToo applies batches that Decode would
// refuse (empty, nested) through ApplyRecord, which takes records built in
// memory: they must be rejected the same way.
func TestBatchBuiltInMemoryIsValidatedToo(t *testing.T) {
	for _, batch := range []*BatchRecord{{}, {Records: []Record{&BatchRecord{Records: []Record{&RemoveTopicRecord{ID: testTopicID}}}}}} {
		image := baseImage(t)
		before := image.Snapshot()
		if err := image.ApplyRecord(100, 2, batch); !errors.Is(err, ErrRejected) {
			t.Errorf("ApplyRecord(%d records) = %v, want ErrRejected", len(batch.Records), err)
		}
		if !bytes.Equal(before, image.Snapshot()) {
			t.Error("a rejected batch changed the image")
		}
	}
}

// TestCloneIsIndependent applies records to a clone and requires the
// original unchanged, and the clone to snapshot like an image that applied
// the same records itself.
func TestCloneIsIndependent(t *testing.T) {
	image := baseImage(t)
	before := image.Snapshot()
	clone := image.Clone()
	if !bytes.Equal(clone.Snapshot(), before) {
		t.Fatal("a clone differs from its original")
	}
	records := []Record{
		change(func(s *PartitionState) { s.ISR = []int32{1, 2}; s.ELR = []int32{} }),
		topicConfig("retention.ms", &testValue),
		&FenceBrokerRecord{BrokerID: 3, BrokerEpoch: 30},
		&TopicRecord{Name: "new", ID: otherTopicID},
	}
	direct := baseImage(t)
	for index, record := range records {
		if err := clone.ApplyRecord(int64(100+index), 2, record); err != nil {
			t.Fatal(err)
		}
		if err := direct.ApplyRecord(int64(100+index), 2, record); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(image.Snapshot(), before) {
		t.Error("changing a clone changed its original")
	}
	if !bytes.Equal(clone.Snapshot(), direct.Snapshot()) {
		t.Error("a clone applies records differently from its original")
	}
}

// TestProducerIdsOnlyGrow: each block of producer ids starts where the last
// ended, so a record that does not move the next id forward is refused and
// leaves the image as it was; a snapshot keeps the next id.
func TestProducerIdsOnlyGrow(t *testing.T) {
	image := NewImage()
	if err := image.ApplyRecord(0, 1, &ProducerIdsRecord{BrokerID: 1, BrokerEpoch: 0, NextProducerID: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, next := range []int64{1000, 999, 0} {
		if err := image.ApplyRecord(1, 1, &ProducerIdsRecord{BrokerID: 2, BrokerEpoch: 0, NextProducerID: next}); err == nil {
			t.Fatalf("next producer id %d after 1000 was accepted", next)
		}
	}
	if image.NextProducerID() != 1000 || image.AppliedOffset() != 0 {
		t.Fatalf("a refused record changed the image: next %d, applied %d", image.NextProducerID(), image.AppliedOffset())
	}
	loaded, err := Load(image.Snapshot())
	if err != nil || loaded.NextProducerID() != 1000 {
		t.Fatalf("after a snapshot: next %d, %v", loaded.NextProducerID(), err)
	}
}
