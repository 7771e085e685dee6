package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/group"
	"github.com/kafkasim/kafkasim/broker/storage"
	"github.com/kafkasim/kafkasim/core/record"
)

// offsetsPartitionsForTest spreads groups over several offsets partitions,
// so that damage to one leaves groups in the others.
const offsetsPartitionsForTest = 4

// damagedAndHealthyGroups returns a group whose offsets live in
// __consumer_offsets-0 (the one the tests damage) and one whose offsets
// live elsewhere.
func damagedAndHealthyGroups(t *testing.T) (string, string) {
	t.Helper()
	var damaged, healthy string
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("group-%d", i)
		if group.OffsetsPartition(name, offsetsPartitionsForTest) == 0 && damaged == "" {
			damaged = name
		} else if group.OffsetsPartition(name, offsetsPartitionsForTest) != 0 && healthy == "" {
			healthy = name
		}
	}
	if damaged == "" || healthy == "" {
		t.Fatal("no group ids for both kinds of offsets partition")
	}
	return damaged, healthy
}

// offsetsSegment is the first segment file of __consumer_offsets-0.
func offsetsSegment(b *simBroker) string {
	return partitionDir(b.cfg.LogDir, offsetsTopic, 0) + "/00000000000000000000.log"
}

func withOffsetsPartitions(cfg *Config) { cfg.OffsetsTopicPartitions = offsetsPartitionsForTest }

// commitOffset commits offset for partition 0 of topic "t" as a simple
// (memberless) commit and returns the partition's error code.
func commitOffset(t *testing.T, b *simBroker, groupID string, offset int64) int16 {
	t.Helper()
	return commitOffsetAs(t, b, groupID, "", -1, offset)
}

func commitOffsetAs(t *testing.T, b *simBroker, groupID, memberID string, generation int32, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.MemberID, req.Generation = groupID, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return b.roundTrip(t, req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// fetchCommitted returns the committed offset of partition 0 of topic "t"
// (OffsetFetch v8), or the error.
func fetchCommitted(t *testing.T, b *simBroker, groupID string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(8)
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = groupID
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = "t", []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	g := b.roundTrip(t, req).(*kmsg.OffsetFetchResponse).Groups[0]
	if g.ErrorCode != 0 {
		return -1, g.ErrorCode
	}
	p := g.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// findCoordinator returns FindCoordinator's error code and node for a group.
func findCoordinator(t *testing.T, b *simBroker, groupID string) (int16, int32) {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(4)
	req.CoordinatorKeys = []string{groupID}
	c := b.roundTrip(t, req).(*kmsg.FindCoordinatorResponse).Coordinators[0]
	return c.ErrorCode, c.NodeID
}

func joinRequest(groupID, memberID string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(5)
	req.Group, req.MemberID, req.ProtocolType = groupID, memberID, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 60_000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
	return req
}

// checkGroupUnavailable asserts that a group whose offsets partition is
// offline has no coordinator and that every group request for it is
// refused, never answered from missing state.
func checkGroupUnavailable(t *testing.T, b *simBroker, groupID string) {
	t.Helper()
	if code, node := findCoordinator(t, b, groupID); code != kerr.CoordinatorNotAvailable.Code || node != -1 {
		t.Fatalf("FindCoordinator for a group of an offline partition: error %d node %d, want COORDINATOR_NOT_AVAILABLE and -1", code, node)
	}
	if offset, code := fetchCommitted(t, b, groupID); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch for a group of an offline partition: offset %d error %d, want NOT_COORDINATOR", offset, code)
	}
	if code := commitOffset(t, b, groupID, 99); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetCommit for a group of an offline partition: error %d, want NOT_COORDINATOR", code)
	}
	join := b.roundTrip(t, joinRequest(groupID, "")).(*kmsg.JoinGroupResponse)
	if join.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("JoinGroup for a group of an offline partition: error %d, want NOT_COORDINATOR", join.ErrorCode)
	}
	list := kmsg.NewPtrListGroupsRequest()
	list.SetVersion(4)
	for _, g := range b.roundTrip(t, list).(*kmsg.ListGroupsResponse).Groups {
		if g.Group == groupID {
			t.Fatalf("ListGroups lists %s, whose offsets partition is offline", groupID)
		}
	}
}

// checkBrokerServes asserts that the user topic "t" takes produce and
// fetch and that a group in a healthy offsets partition kept its offset.
func checkBrokerServes(t *testing.T, b *simBroker, healthy string, committed int64) {
	t.Helper()
	if b.node.Halted() != nil {
		t.Fatalf("the node halted: %v", b.node.Halted())
	}
	if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "after")); code != 0 {
		t.Fatalf("produce to a user topic: error %d", code)
	}
	resp := b.roundTrip(t, fetchFromStart("t")).(*kmsg.FetchResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch from a user topic: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if code, _ := findCoordinator(t, b, healthy); code != 0 {
		t.Fatalf("FindCoordinator for a group of a healthy partition: error %d", code)
	}
	if offset, code := fetchCommitted(t, b, healthy); code != 0 || offset != committed {
		t.Fatalf("group in a healthy offsets partition: offset %d error %d, want %d", offset, code, committed)
	}
	if code := commitOffset(t, b, healthy, committed+1); code != 0 {
		t.Fatalf("commit for a group of a healthy partition: error %d", code)
	}
}

// TestCorruptOffsetsPartitionAtStartup damages __consumer_offsets-0 at
// rest and restarts. Before, the broker refused to start ("restore
// consumer groups"); now that partition goes offline with every byte kept,
// the groups stored in it are unavailable (not reset), and the broker
// serves its topics and the groups of the other offsets partitions.
func TestCorruptOffsetsPartitionAtStartup(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b *simBroker) error
	}{
		{"changed bytes", func(b *simBroker) error {
			return b.disk.Corrupt(offsetsSegment(b), record.HeaderBytes+2, 1)
		}},
		{"latent sector error", func(b *simBroker) error {
			return b.disk.AddLatentError(offsetsSegment(b), record.HeaderBytes+2, 1)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newSimBroker(t, 40+uint64(i), withOffsetsPartitions)
			damaged, healthy := damagedAndHealthyGroups(t)
			createTopic(t, b, "t", 1)
			if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a", "b")); code != 0 {
				t.Fatalf("produce: %d", code)
			}
			for offset := int64(1); offset <= 6; offset++ {
				if code := commitOffset(t, b, damaged, offset); code != 0 {
					t.Fatalf("commit: %d", code)
				}
			}
			if code := commitOffset(t, b, healthy, 7); code != 0 {
				t.Fatalf("commit: %d", code)
			}
			checkpoint(b) // the damage lies below the recovery point
			b.kill(t)
			if err := tc.damage(b); err != nil {
				t.Fatal(err)
			}
			b.kill(t) // the boot itself fails the test if the broker does not start
			if p := metadataPartitionAt(t, b, offsetsTopic, 0); p.ErrorCode != kerr.LeaderNotAvailable.Code {
				t.Fatalf("damaged offsets partition in Metadata: error %d, want LEADER_NOT_AVAILABLE", p.ErrorCode)
			}
			checkGroupUnavailable(t, b, damaged)
			checkBrokerServes(t, b, healthy, 7)
			if !b.node.groups.PartitionUnloaded(0) {
				t.Fatal("the coordinator still serves the damaged partition")
			}
			checkStoreRefuses(t, b, damaged)
			if _, err := storage.Open(b.disk, partitionDir(b.cfg.LogDir, offsetsTopic, 0), storage.DefaultConfig(), b.node.now()); !errors.Is(err, storage.ErrCorruption) {
				t.Fatalf("opening the damaged partition again: %v, want the corruption: the broker must keep every byte for a repair", err)
			}
		})
	}
}

// TestGroupReplayFindsCorruption: the coordinator's startup replay reads
// every record of __consumer_offsets after recovery, so it can be the
// first to meet damage that recovery's reads did not (today recovery
// replays the whole log for producer state, as no producer snapshot is
// taken of __consumer_offsets). openGroups then takes that partition
// offline and unloads it instead of failing the start, dropping what it
// had replayed of it. The replay runs here on a booted broker whose page
// cache already holds the damage.
func TestGroupReplayFindsCorruption(t *testing.T) {
	b := newSimBroker(t, 45, withOffsetsPartitions)
	damaged, healthy := damagedAndHealthyGroups(t)
	createTopic(t, b, "t", 1)
	if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a")); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	for _, g := range []string{damaged, healthy} {
		if code := commitOffset(t, b, g, 7); code != 0 {
			t.Fatalf("commit: %d", code)
		}
	}
	// A second batch after the damaged one, so the damage is not a torn tail.
	if code := commitOffset(t, b, damaged, 8); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if err := b.disk.Corrupt(offsetsSegment(b), record.HeaderBytes+2, 1); err != nil {
		t.Fatal(err)
	}
	b.node.groups.Close()
	b.node.groups = nil
	if err := b.node.openGroups(); err != nil {
		t.Fatalf("openGroups: %v", err)
	}
	p := b.node.catalog.partition(offsetsTopic, 0)
	if p.offline == nil || !b.node.groups.PartitionUnloaded(0) {
		t.Fatalf("after the replay met the damage: offline %v, unloaded %v", p.offline, b.node.groups.PartitionUnloaded(0))
	}
	checkGroupUnavailable(t, b, damaged)
	checkBrokerServes(t, b, healthy, 7)
}

// TestOffsetsPartitionDamageFoundWhileRunning: the damage is found after
// the start, by a read of __consumer_offsets-0 or by the scrubber. As
// Kafka's coordinator does when it loses a partition, the groups stored
// there are unloaded: a join parked in a rebalance is answered
// NOT_COORDINATOR, the members' heartbeats and commits are refused, and no
// offset fetch says "nothing committed"; the rest of the broker serves.
func TestOffsetsPartitionDamageFoundWhileRunning(t *testing.T) {
	cases := []struct {
		name string
		find func(t *testing.T, b *simBroker)
	}{
		{"a read", func(t *testing.T, b *simBroker) {
			resp := b.roundTrip(t, fetchFromStart(offsetsTopic)).(*kmsg.FetchResponse)
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
				t.Fatalf("fetch of the damaged offsets batch: error %d, want KAFKA_STORAGE_ERROR", code)
			}
		}},
		{"the scrubber", func(t *testing.T, b *simBroker) { checkpoint(b) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newSimBroker(t, 50+uint64(i), withOffsetsPartitions)
			damaged, healthy := damagedAndHealthyGroups(t)
			createTopic(t, b, "t", 1)
			if code, _ := produceCode(t, b, produceRequest(t, "t", 0, -1, record.NewBatchSpec(record.CodecNone), "a")); code != 0 {
				t.Fatalf("produce: %d", code)
			}
			if code := commitOffset(t, b, healthy, 7); code != 0 {
				t.Fatalf("commit: %d", code)
			}
			leader, generation := stableMember(t, b, damaged)
			if code := commitOffsetAs(t, b, damaged, leader, generation, 1); code != 0 {
				t.Fatalf("member commit: %d", code)
			}
			// A second member's join parks until the leader rejoins.
			other, otherWire := b.secondConn()
			first := parseResponse(t, joinRequest(damaged, ""), sendOn(b, other, otherWire, joinRequest(damaged, ""), 20)[0]).(*kmsg.JoinGroupResponse)
			if first.ErrorCode != kerr.MemberIDRequired.Code {
				t.Fatalf("first join of the second member: error %d", first.ErrorCode)
			}
			parked := joinRequest(damaged, first.MemberID)
			if answers := sendOn(b, other, otherWire, parked, 21); len(answers) != 0 {
				t.Fatal("the second member's join was not parked")
			}

			if err := b.disk.Corrupt(offsetsSegment(b), record.HeaderBytes+2, 1); err != nil {
				t.Fatal(err)
			}
			tc.find(t, b)

			b.sched.RunFor(10 * time.Millisecond)
			if len(otherWire.sent) != 2 {
				t.Fatalf("the parked join got %d answers, want 1", len(otherWire.sent)-1)
			}
			if code := parseResponse(t, parked, otherWire.sent[1]).(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.NotCoordinator.Code {
				t.Fatalf("parked join after the damage: error %d, want NOT_COORDINATOR", code)
			}
			heartbeat := kmsg.NewPtrHeartbeatRequest()
			heartbeat.SetVersion(4)
			heartbeat.Group, heartbeat.MemberID, heartbeat.Generation = damaged, leader, generation
			if code := b.roundTrip(t, heartbeat).(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.NotCoordinator.Code {
				t.Fatalf("heartbeat after the damage: error %d, want NOT_COORDINATOR", code)
			}
			if code := commitOffsetAs(t, b, damaged, leader, generation, 2); code != kerr.NotCoordinator.Code {
				t.Fatalf("member commit after the damage: error %d, want NOT_COORDINATOR", code)
			}
			checkGroupUnavailable(t, b, damaged)
			checkBrokerServes(t, b, healthy, 7)
		})
	}
}

// checkpoint runs one walk of the recovery point checkpoint, which also
// scrubs each partition (the test broker is never started, so its timer
// does not run).
func checkpoint(b *simBroker) {
	b.node.catalog.checkpointRecoveryPoints()
	b.sched.RunFor(100 * time.Millisecond)
}

// sendOn sends req on another connection, runs the simulation briefly and
// returns the frames it answered.
func sendOn(b *simBroker, c *conn, wire *captureConn, req kmsg.Request, correlationID int32) [][]byte {
	before := len(wire.sent)
	c.OnFrame(wire, encodeRequest(req, correlationID))
	b.sched.RunFor(100 * time.Millisecond)
	return wire.sent[before:]
}

// stableMember forms a one-member group and returns its member id and
// generation.
func stableMember(t *testing.T, b *simBroker, groupID string) (string, int32) {
	t.Helper()
	first := b.roundTrip(t, joinRequest(groupID, "")).(*kmsg.JoinGroupResponse)
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: error %d", first.ErrorCode)
	}
	join := b.roundTrip(t, joinRequest(groupID, first.MemberID)).(*kmsg.JoinGroupResponse)
	if join.ErrorCode != 0 {
		t.Fatalf("join: error %d", join.ErrorCode)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.SetVersion(3)
	sync.Group, sync.MemberID, sync.Generation = groupID, join.MemberID, join.Generation
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: []byte{0}}}
	if code := b.roundTrip(t, sync).(*kmsg.SyncGroupResponse).ErrorCode; code != 0 {
		t.Fatalf("sync: error %d", code)
	}
	return join.MemberID, join.Generation
}

// checkStoreRefuses asserts that the Store writes nothing to an offline
// offsets partition (whose log may not even exist) and says why with
// NOT_COORDINATOR.
func checkStoreRefuses(t *testing.T, b *simBroker, groupID string) {
	t.Helper()
	var got error
	calls := 0
	store := &offsetsStore{node: b.node}
	store.Append(groupID, []group.StoreRecord{{Key: []byte("key"), Value: []byte("value")}}, func(err error) { got, calls = err, calls+1 })
	if calls != 1 || !errors.Is(got, group.ErrNotCoordinator) || !errors.Is(got, kerr.KafkaStorageError) {
		t.Fatalf("Store.Append to an offline partition: %d calls, error %v, want one NOT_COORDINATOR", calls, got)
	}
}

// TestCoordinatorErrorMapsAsKafka: a write of __consumer_offsets that
// failed because this broker cannot write the partition tells the client
// to find the coordinator again, as Kafka's GroupMetadataManager maps
// append errors; other errors are left to the coordinator
// (COORDINATOR_NOT_AVAILABLE).
func TestCoordinatorErrorMapsAsKafka(t *testing.T) {
	cases := []struct {
		err            error
		notCoordinator bool
	}{
		{fmt.Errorf("%w: offline", kerr.KafkaStorageError), true},
		{fmt.Errorf("%w: closed", kerr.NotLeaderForPartition), true},
		{fmt.Errorf("%w: full", kerr.RequestTimedOut), false},
		{nil, false},
	}
	for _, tc := range cases {
		got := coordinatorError(tc.err)
		if errors.Is(got, group.ErrNotCoordinator) != tc.notCoordinator || !errors.Is(got, tc.err) {
			t.Errorf("coordinatorError(%v) = %v, want NOT_COORDINATOR %v", tc.err, got, tc.notCoordinator)
		}
	}
}
