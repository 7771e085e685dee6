package controller

import (
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/kafkasim/kafkasim/core"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeRaft is a Proposer whose entries commit only when the test says so.
// err, when set, refuses every proposal.
type fakeRaft struct {
	next    int64
	epoch   int32
	entries []fakeEntry
	err     error
}

type fakeEntry struct {
	offset int64
	epoch  int32
	data   []byte
}

func (f *fakeRaft) Propose(data []byte) (int64, error) {
	if f.err != nil {
		return -1, f.err
	}
	offset := f.next
	f.next++
	f.entries = append(f.entries, fakeEntry{offset: offset, epoch: f.epoch, data: append([]byte{}, data...)})
	return offset, nil
}

// harness runs one controller over a committed image and a fakeRaft, at a
// virtual time the test moves.
type harness struct {
	t         testing.TB
	committed *metadata.Image
	raft      *fakeRaft
	c         *Controller
	config    Config
	now       time.Duration
}

func testConfig() Config {
	return Config{
		NodeID: 1, ClusterID: "cluster", SessionTimeout: 9 * time.Second,
		DefaultPartitions: 1, DefaultReplicationFactor: 1,
		LeaderImbalanceCheckInterval: 300 * time.Second, Rand: core.NewRand(1),
	}
}

// newHarness applies seed records (offsets 0..n-1, epoch 1), then the
// leader-change entry of epoch 2, and activates the controller.
func newHarness(t testing.TB, mutate func(config *Config), seed ...metadata.Record) *harness {
	t.Helper()
	config := testConfig()
	if mutate != nil {
		mutate(&config)
	}
	committed := metadata.NewImage()
	for offset, record := range seed {
		if err := committed.ApplyRecord(int64(offset), 1, record); err != nil {
			t.Fatalf("seed record %d: %v", offset, err)
		}
	}
	if err := committed.Apply(int64(len(seed)), 2, nil); err != nil {
		t.Fatal(err)
	}
	raft := &fakeRaft{next: int64(len(seed)) + 1, epoch: 2}
	c, err := New(config, committed, raft)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, committed: committed, raft: raft, c: c, config: config}
	c.Activate(h.now)
	return h
}

// call records every answer a request got.
type call struct {
	responses []kmsg.Response
}

func (h *harness) handle(request kmsg.Request) *call {
	answered := &call{}
	h.c.Handle(h.now, request, func(response kmsg.Response) { answered.responses = append(answered.responses, response) })
	return answered
}

// commit applies every proposed entry to the committed image, as the host
// does, then tells the controller.
func (h *harness) commit() {
	h.t.Helper()
	for _, entry := range h.raft.entries {
		if err := h.committed.Apply(entry.offset, entry.epoch, entry.data); err != nil {
			h.t.Fatalf("committed entry %d rejected: %v", entry.offset, err)
		}
	}
	h.raft.entries = nil
	h.c.Applied(h.now)
}

// do handles a request, commits and returns its one answer.
func (h *harness) do(request kmsg.Request) kmsg.Response {
	h.t.Helper()
	answered := h.handle(request)
	h.commit()
	if len(answered.responses) != 1 {
		h.t.Fatalf("%T answered %d times, want once", request, len(answered.responses))
	}
	return answered.responses[0]
}

func (h *harness) register(id int32, incarnation byte) *kmsg.BrokerRegistrationResponse {
	request := kmsg.NewPtrBrokerRegistrationRequest()
	request.BrokerID, request.ClusterID, request.IncarnationID = id, "cluster", [16]byte{incarnation}
	return h.do(request).(*kmsg.BrokerRegistrationResponse)
}

func heartbeat(id int32, epoch, offset int64) *kmsg.BrokerHeartbeatRequest {
	request := kmsg.NewPtrBrokerHeartbeatRequest()
	request.BrokerID, request.BrokerEpoch, request.CurrentMetadataOffset = id, epoch, offset
	return request
}

func (h *harness) heartbeat(request *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse {
	return h.do(request).(*kmsg.BrokerHeartbeatResponse)
}

// brokers registers and unfences brokers 1..n.
func (h *harness) brokers(n int32) {
	h.t.Helper()
	for id := int32(1); id <= n; id++ {
		epoch := h.register(id, byte(id)).BrokerEpoch
		if response := h.heartbeat(heartbeat(id, epoch, h.committed.AppliedOffset())); response.IsFenced {
			h.t.Fatalf("broker %d stays fenced after catching up", id)
		}
	}
}

func (h *harness) broker(id int32) metadata.Broker {
	broker, ok := h.committed.Broker(id)
	if !ok {
		h.t.Fatalf("broker %d is not registered", id)
	}
	return broker
}

func (h *harness) partition(topic string, partition int32) metadata.PartitionState {
	h.t.Helper()
	found, ok := h.committed.TopicByName(topic)
	if !ok || int(partition) >= len(found.Partitions) {
		h.t.Fatalf("no partition %s-%d", topic, partition)
	}
	return found.Partitions[partition]
}

func createTopic(name string, partitions int32, factor int16, configs ...string) *kmsg.CreateTopicsRequest {
	request := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = name, partitions, factor
	for index := 0; index+1 < len(configs); index += 2 {
		config := kmsg.NewCreateTopicsRequestTopicConfig()
		config.Name, config.Value = configs[index], &configs[index+1]
		topic.Configs = append(topic.Configs, config)
	}
	request.Topics = append(request.Topics, topic)
	return request
}

func requireCode(t testing.TB, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// Seed records: brokers 1 to 3 unfenced, topic "orders" with one partition
// on replicas 1,2,3, all in sync, led by 1. The topic ID is fixed.
var ordersID = metadata.TopicID{1}

func seedOrders(isr []int32, leader int32, configs ...string) []metadata.Record {
	records := []metadata.Record{
		&metadata.RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 1, IncarnationID: [16]byte{1}},
		&metadata.RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 2, IncarnationID: [16]byte{2}},
		&metadata.RegisterBrokerRecord{BrokerID: 3, BrokerEpoch: 3, IncarnationID: [16]byte{3}},
		&metadata.TopicRecord{Name: "orders", ID: ordersID},
		&metadata.PartitionRecord{PartitionState: metadata.PartitionState{
			TopicID: ordersID, Replicas: []int32{1, 2, 3}, ISR: isr, ELR: []int32{}, Leader: leader,
		}},
	}
	for index := 0; index+1 < len(configs); index += 2 {
		value := configs[index+1]
		records = append(records, &metadata.ConfigRecord{
			Resource: metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: "orders"}, Name: configs[index], Value: &value,
		})
	}
	return records
}
