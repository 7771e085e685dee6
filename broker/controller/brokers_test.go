package controller

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBrokerRegistration registers brokers against a controller that knows
// broker 1 (incarnation 1, registered at time 0) and checks each answer: the
// cluster ID must match, the epoch is the offset of the registering entry
// and grows, and another incarnation is refused while the old one's session
// lives and accepted once it has expired.
func TestBrokerRegistration(t *testing.T) {
	cases := []struct {
		name        string
		id          int32
		cluster     string
		incarnation byte
		after       time.Duration
		want        *kerr.Error
	}{
		{"a new broker", 2, "cluster", 2, 0, nil},
		{"another cluster's broker", 2, "other", 2, 0, kerr.InconsistentClusterID},
		{"a negative broker id", -1, "cluster", 2, 0, kerr.InvalidRequest},
		{"the same incarnation again", 1, "cluster", 1, time.Second, nil},
		{"another incarnation within the session", 1, "cluster", 9, 8 * time.Second, kerr.DuplicateBrokerRegistration},
		{"another incarnation after the session", 1, "cluster", 9, 9 * time.Second, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			first := h.register(1, 1)
			if first.ErrorCode != 0 || first.BrokerEpoch != 1 {
				t.Fatalf("first registration: %+v, want epoch 1 (the offset after the leader change)", first)
			}
			h.now += c.after
			request := kmsg.NewPtrBrokerRegistrationRequest()
			request.BrokerID, request.ClusterID, request.IncarnationID = c.id, c.cluster, [16]byte{c.incarnation}
			offsetBefore := h.raft.next
			response := h.do(request).(*kmsg.BrokerRegistrationResponse)
			requireCode(t, "registration", response.ErrorCode, c.want)
			if c.want != nil {
				if h.raft.next != offsetBefore {
					t.Error("a refused registration proposed an entry")
				}
				return
			}
			if response.BrokerEpoch != offsetBefore {
				t.Errorf("broker epoch %d, want the entry's offset %d", response.BrokerEpoch, offsetBefore)
			}
			broker := h.broker(c.id)
			if broker.Epoch != response.BrokerEpoch || !broker.Fenced || broker.IncarnationID != request.IncarnationID {
				t.Errorf("registered %+v, want fenced with epoch %d", broker, response.BrokerEpoch)
			}
		})
	}
}

// TestReregistrationMovesLeadershipsFirst re-registers broker 1, which leads
// "orders" with all three in sync: the same entry elects broker 2 and takes
// 1 out of the ISR before registering 1 fenced, so no fenced broker leads.
func TestReregistrationMovesLeadershipsFirst(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1, 2, 3}, 1)...)
	if response := h.register(1, 1); response.ErrorCode != 0 {
		t.Fatalf("registration: %v", kerr.ErrorForCode(response.ErrorCode))
	}
	partition := h.partition("orders", 0)
	if partition.Leader != 2 || !slices.Equal(partition.ISR, []int32{2, 3}) || partition.LeaderEpoch != 1 {
		t.Errorf("after re-registration: %+v, want leader 2, ISR 2,3, leader epoch 1", partition)
	}
	if !h.broker(1).Fenced {
		t.Error("a registered broker starts unfenced")
	}
}

// TestBrokerHeartbeat walks brokers through Kafka's broker states with a
// few heartbeats per case, from a committed image where broker 1 is
// registered fenced at epoch 1 and broker 2, unfenced, leads partition t-0
// on replicas 2,1 with both in sync. The last heartbeat's answer, its
// broker's state and t-0's leader are checked.
func TestBrokerHeartbeat(t *testing.T) {
	type beat struct {
		id          int32
		epoch       int64 // 0 means the broker's current epoch
		offset      int64 // -1 means caught up
		fence, stop bool
	}
	type want struct {
		err                        *kerr.Error
		caughtUp, fenced, shutdown bool
		brokerFenced, shuttingDown bool
		leaderAfter                int32
	}
	cases := []struct {
		name  string
		beats []beat
		want  want
	}{
		{"an unknown broker", []beat{{id: 7, epoch: 1, offset: -1}}, want{err: kerr.BrokerIDNotRegistered, fenced: true, brokerFenced: true, leaderAfter: 2}},
		{"a stale epoch", []beat{{id: 1, epoch: 99, offset: -1}}, want{err: kerr.StaleBrokerEpoch, fenced: true, brokerFenced: true, leaderAfter: 2}},
		{"not caught up stays fenced", []beat{{id: 1, offset: 0}}, want{fenced: true, brokerFenced: true, leaderAfter: 2}},
		{"caught up is unfenced", []beat{{id: 1, offset: -1}}, want{caughtUp: true, leaderAfter: 2}},
		{"caught up but wants to stay fenced", []beat{{id: 1, offset: -1, fence: true}}, want{caughtUp: true, fenced: true, brokerFenced: true, leaderAfter: 2}},
		{"unfenced then wants the fence", []beat{{id: 1, offset: -1}, {id: 1, offset: -1, fence: true}}, want{caughtUp: true, fenced: true, brokerFenced: true, leaderAfter: 2}},
		{"fenced and wants to shut down", []beat{{id: 1, offset: 0, stop: true}}, want{fenced: true, shutdown: true, brokerFenced: true, leaderAfter: 2}},
		{"unfenced, leads nothing, shuts down at once", []beat{{id: 1, offset: -1}, {id: 1, offset: -1, stop: true}}, want{caughtUp: true, fenced: true, shutdown: true, brokerFenced: true, leaderAfter: 2}},
		{"a leader enters controlled shutdown", []beat{{id: 1, offset: -1}, {id: 2, offset: -1, stop: true}}, want{caughtUp: true, shuttingDown: true, leaderAfter: 1}},
		{"and is let go once it leads nothing", []beat{{id: 1, offset: -1}, {id: 2, offset: -1, stop: true}, {id: 2, offset: -1, stop: true}},
			want{caughtUp: true, fenced: true, shutdown: true, brokerFenced: true, leaderAfter: 1}},
		{"a leader's shutdown with no one to take over", []beat{{id: 2, offset: -1, stop: true}}, want{caughtUp: true, shuttingDown: true, leaderAfter: metadata.NoLeader}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := metadata.TopicID{7}
			h := newHarness(t, nil,
				&metadata.RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 1, IncarnationID: [16]byte{1}, Fenced: true},
				&metadata.RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 2, IncarnationID: [16]byte{2}},
				&metadata.TopicRecord{Name: "t", ID: id},
				&metadata.PartitionRecord{PartitionState: metadata.PartitionState{TopicID: id, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, ELR: []int32{}, Leader: 2}},
			)
			var response *kmsg.BrokerHeartbeatResponse
			var last int32
			for _, b := range c.beats {
				epoch := b.epoch
				if epoch == 0 {
					epoch = h.broker(b.id).Epoch
				}
				offset := b.offset
				if offset == -1 {
					offset = h.committed.AppliedOffset()
				}
				request := heartbeat(b.id, epoch, offset)
				request.WantFence, request.WantShutdown = b.fence, b.stop
				response, last = h.heartbeat(request), b.id
			}
			requireCode(t, "heartbeat", response.ErrorCode, c.want.err)
			if c.want.err == nil && (response.IsCaughtUp != c.want.caughtUp || response.IsFenced != c.want.fenced || response.ShouldShutdown != c.want.shutdown) {
				t.Errorf("answer caught up %t, fenced %t, shut down %t; want %t, %t, %t",
					response.IsCaughtUp, response.IsFenced, response.ShouldShutdown, c.want.caughtUp, c.want.fenced, c.want.shutdown)
			}
			if broker, ok := h.committed.Broker(last); ok && (broker.Fenced != c.want.brokerFenced || broker.InControlledShutdown != c.want.shuttingDown) {
				t.Errorf("broker %d: fenced %t, shutting down %t; want %t, %t", last, broker.Fenced, broker.InControlledShutdown, c.want.brokerFenced, c.want.shuttingDown)
			}
			if leader := h.partition("t", 0).Leader; leader != c.want.leaderAfter {
				t.Errorf("t-0 led by %d, want %d", leader, c.want.leaderAfter)
			}
		})
	}
}

// createTopicAssigned creates a one-partition topic on the given replicas.
func createTopicAssigned(name string, replicas []int32) *kmsg.CreateTopicsRequest {
	request := createTopic(name, -1, -1)
	assignment := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	assignment.Replicas = replicas
	request.Topics[0].ReplicaAssignment = append(request.Topics[0].ReplicaAssignment, assignment)
	return request
}

// TestSessionsExpire checks the session timeout from a newly active
// controller: every broker of the committed image gets a fresh session at
// activation (time 100 s), is not fenced at 108.9 s, and is fenced at 109 s
// unless it sent a heartbeat meanwhile; the fenced leader's partition moves
// to the next ISR member.
func TestSessionsExpire(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1, 2, 3}, 1)...)
	h.now = 100 * time.Second
	h.c.Activate(h.now)
	h.now += 8900 * time.Millisecond
	h.heartbeat(heartbeat(3, 3, h.committed.AppliedOffset()))
	h.c.Tick(h.now)
	h.commit()
	for id := int32(1); id <= 3; id++ {
		if h.broker(id).Fenced {
			t.Fatalf("broker %d fenced before its session expired", id)
		}
	}
	h.now = 109 * time.Second
	h.c.Tick(h.now)
	if _, requests := h.c.Pending(); requests != 0 {
		t.Fatal("a tick left requests waiting")
	}
	h.commit()
	if !h.broker(1).Fenced || !h.broker(2).Fenced || h.broker(3).Fenced {
		t.Errorf("after 9 s: fenced %t %t %t, want brokers 1 and 2 fenced and 3 (heartbeat at 108.9 s) not",
			h.broker(1).Fenced, h.broker(2).Fenced, h.broker(3).Fenced)
	}
	if partition := h.partition("orders", 0); partition.Leader != 3 || !slices.Equal(partition.ISR, []int32{3}) {
		t.Errorf("orders-0 after fencing 1 and 2: %+v, want leader 3 alone in the ISR", partition)
	}
}

// TestUncleanElectionFollowsConfiguration fences the leader of a partition
// whose ISR holds only it: the partition goes leaderless unless unclean
// election is enabled, by the topic's configuration first, then by the
// cluster-wide dynamic default, then by the static default; an unclean
// leader is marked recovering.
func TestUncleanElectionFollowsConfiguration(t *testing.T) {
	cases := []struct {
		name           string
		staticDefault  bool
		dynamicDefault string
		topic          string
		wantUnclean    bool
	}{
		{"disabled everywhere", false, "", "", false},
		{"static default", true, "", "", true},
		{"dynamic default overrides static", true, "false", "", false},
		{"topic enables", false, "false", "true", true},
		{"topic disables", true, "true", "false", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var configs []string
			if c.topic != "" {
				configs = []string{uncleanConfigName, c.topic}
			}
			seed := seedOrders([]int32{1}, 1, configs...)
			if c.dynamicDefault != "" {
				value := c.dynamicDefault
				seed = append(seed, &metadata.ConfigRecord{Resource: metadata.ConfigResource{Type: kmsg.ConfigResourceTypeBroker}, Name: uncleanConfigName, Value: &value})
			}
			h := newHarness(t, func(config *Config) { config.UncleanLeaderElection = c.staticDefault }, seed...)
			request := heartbeat(1, 1, h.committed.AppliedOffset())
			request.WantFence = true
			h.heartbeat(request)
			partition := h.partition("orders", 0)
			unclean := partition.Leader == 2 && partition.LeaderRecovering
			leaderless := partition.Leader == metadata.NoLeader && slices.Equal(partition.ISR, []int32{1})
			if (c.wantUnclean && !unclean) || (!c.wantUnclean && !leaderless) {
				t.Errorf("orders-0 %+v, want unclean election %t", partition, c.wantUnclean)
			}
		})
	}
}

// TestBrokersView shows the committed brokers with their sessions, and no
// sessions once the controller is inactive.
func TestBrokersView(t *testing.T) {
	h := newHarness(t, nil)
	h.now = 5 * time.Second
	h.brokers(2)
	statuses := h.c.Brokers()
	if len(statuses) != 2 || statuses[0].ID != 1 || statuses[0].Fenced || !statuses[0].HasSession || statuses[0].LastHeartbeat != 5*time.Second {
		t.Fatalf("brokers %+v", statuses)
	}
	h.c.Deactivate()
	if statuses := h.c.Brokers(); len(statuses) != 2 || statuses[1].HasSession {
		t.Errorf("an inactive controller shows sessions: %+v", statuses)
	}
}

// TestUnfencedHeartbeatSaysUnfenced sends a plain heartbeat from an
// unfenced broker: kmsg's response defaults IsFenced to true, so the answer
// must state false itself.
func TestUnfencedHeartbeatSaysUnfenced(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(1)
	response := h.heartbeat(heartbeat(1, h.broker(1).Epoch, h.committed.AppliedOffset()))
	if response.IsFenced || response.ShouldShutdown || !response.IsCaughtUp {
		t.Errorf("answer %+v, want unfenced and caught up", response)
	}
}

// TestReturningBrokerLeadsItsLeaderlessPartitions re-registers broker 1,
// the only ISR member and leader of "orders": its registration leaves the
// partition leaderless (it may not lead while fenced), and the entry that
// unfences it once it caught up elects it again in the same batch.
func TestReturningBrokerLeadsItsLeaderlessPartitions(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1}, 1)...)
	epoch := h.register(1, 1).BrokerEpoch
	if partition := h.partition("orders", 0); partition.Leader != metadata.NoLeader || !slices.Equal(partition.ISR, []int32{1}) {
		t.Fatalf("after re-registration: %+v, want no leader and ISR 1", partition)
	}
	if response := h.heartbeat(heartbeat(1, epoch, h.committed.AppliedOffset())); response.IsFenced {
		t.Fatal("a caught-up broker stays fenced")
	}
	if partition := h.partition("orders", 0); partition.Leader != 1 || partition.LeaderEpoch != 2 {
		t.Fatalf("after unfencing: %+v, want broker 1 leading again in leader epoch 2", partition)
	}
}

// TestAllocateProducerIDs hands out consecutive, disjoint blocks to
// registered brokers at their current epoch, and refuses stale or unknown
// ones without recording anything.
func TestAllocateProducerIDs(t *testing.T) {
	h := newHarness(t, nil)
	h.brokers(2)
	ask := func(id int32, epoch int64) *kmsg.AllocateProducerIDsResponse {
		request := kmsg.NewPtrAllocateProducerIDsRequest()
		request.BrokerID, request.BrokerEpoch = id, epoch
		return h.do(request).(*kmsg.AllocateProducerIDsResponse)
	}
	first := ask(1, h.broker(1).Epoch)
	second := ask(2, h.broker(2).Epoch)
	requireCode(t, "first block", first.ErrorCode, nil)
	requireCode(t, "second block", second.ErrorCode, nil)
	if first.ProducerIDStart != 0 || first.ProducerIDLen != ProducerIDBlockSize || second.ProducerIDStart != ProducerIDBlockSize {
		t.Fatalf("blocks [%d, +%d) and [%d, +%d), want consecutive blocks from 0", first.ProducerIDStart, first.ProducerIDLen, second.ProducerIDStart, second.ProducerIDLen)
	}
	requireCode(t, "stale epoch", ask(1, h.broker(1).Epoch-1).ErrorCode, kerr.StaleBrokerEpoch)
	requireCode(t, "unknown broker", ask(9, 0).ErrorCode, kerr.BrokerIDNotRegistered)
	if next := h.committed.NextProducerID(); next != 2*ProducerIDBlockSize {
		t.Fatalf("next producer id %d, want %d", next, 2*ProducerIDBlockSize)
	}
}

// TestOfflineReplicaLeavesService has broker 1, leader of "orders" with
// all three replicas in sync, report its replica's directory offline in a
// heartbeat: the partition moves to broker 2 and broker 1 leaves the ISR;
// a directory id of no replica of it changes nothing.
func TestOfflineReplicaLeavesService(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1, 2, 3}, 1)...)
	for id := int32(1); id <= 3; id++ {
		if response := h.heartbeat(heartbeat(id, int64(id), h.committed.AppliedOffset())); response.IsFenced {
			t.Fatalf("broker %d stays fenced", id)
		}
	}
	before := h.partition("orders", 0)
	other := heartbeat(1, 1, h.committed.AppliedOffset())
	other.OfflineLogDirs = [][16]byte{metadata.ReplicaDirectoryID(ordersID, 1)}
	h.heartbeat(other)
	if got := h.partition("orders", 0); !reflect.DeepEqual(got, before) {
		t.Fatalf("another directory changed the partition: %+v", got)
	}
	request := heartbeat(1, 1, h.committed.AppliedOffset())
	request.OfflineLogDirs = [][16]byte{metadata.ReplicaDirectoryID(ordersID, 0)}
	if response := h.heartbeat(request); response.ErrorCode != 0 || response.IsFenced {
		t.Fatalf("answer %+v, want an unfenced broker", response)
	}
	got := h.partition("orders", 0)
	if got.Leader != 2 || !slices.Equal(got.ISR, []int32{2, 3}) || got.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("after the offline report: %+v, want broker 2 leading ISR [2 3] in the next leader epoch", got)
	}
}
