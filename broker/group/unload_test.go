package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// unloadConfig spreads groups over four offsets partitions.
func unloadConfig() Config {
	cfg := testConfig()
	cfg.OffsetsPartitions = 4
	return cfg
}

// groupsInTwoPartitions returns two group ids whose offsets live in
// different partitions.
func groupsInTwoPartitions(t *testing.T, partitions int32) (string, string) {
	t.Helper()
	first := "group-0"
	for i := 1; i < 100; i++ {
		other := fmt.Sprintf("group-%d", i)
		if OffsetsPartition(other, partitions) != OffsetsPartition(first, partitions) {
			return first, other
		}
	}
	t.Fatal("no two groups in different partitions")
	return "", ""
}

// groupRequests sends every group API for one group and returns each
// answer's error code (the group-level one, or the first partition's or
// member's where the API has no other).
var groupRequests = []struct {
	name string
	send func(h *harness, group string) int16
}{
	{"JoinGroup", func(h *harness, group string) int16 {
		r := h.join(joinReq(group, "", 5))
		return r.got.ErrorCode
	}},
	{"SyncGroup", func(h *harness, group string) int16 {
		return h.sync(syncReq(group, "m", 1, nil)).got.ErrorCode
	}},
	{"Heartbeat", func(h *harness, group string) int16 { return h.heartbeat(group, "m", 1) }},
	{"LeaveGroup", func(h *harness, group string) int16 {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = 5
		req.Group = group
		req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
		r := &reply[*kmsg.LeaveGroupResponse]{t: h.t}
		h.c.LeaveGroup(req, r.respond)
		return r.got.ErrorCode
	}},
	{"OffsetCommit", func(h *harness, group string) int16 {
		return commitCode(h.commit(commitReq(group, "", -1, "t", 0, 7)))
	}},
	{"OffsetFetch v8", func(h *harness, group string) int16 {
		_, code := h.fetch(group, "t", 0)
		return code
	}},
	{"OffsetFetch v1", func(h *harness, group string) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 1
		req.Group = group
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		r := &reply[*kmsg.OffsetFetchResponse]{t: h.t}
		h.c.OffsetFetch(req, r.respond)
		// v1 has no group error: the partition carries it, never the
		// "nothing committed" offset -1 with no error.
		return r.got.Topics[0].Partitions[0].ErrorCode
	}},
	{"OffsetFetch v7 all topics", func(h *harness, group string) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 7
		req.Group = group
		r := &reply[*kmsg.OffsetFetchResponse]{t: h.t}
		h.c.OffsetFetch(req, r.respond)
		return r.got.ErrorCode
	}},
	{"DescribeGroups", func(h *harness, group string) int16 {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 5
		req.Groups = []string{group}
		r := &reply[*kmsg.DescribeGroupsResponse]{t: h.t}
		h.c.DescribeGroups(req, r.respond)
		return r.got.Groups[0].ErrorCode
	}},
	{"DeleteGroups", func(h *harness, group string) int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups = []string{group}
		r := &reply[*kmsg.DeleteGroupsResponse]{t: h.t}
		h.c.DeleteGroups(req, r.respond)
		return r.got.Groups[0].ErrorCode
	}},
	{"OffsetDelete", func(h *harness, group string) int16 {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		r := &reply[*kmsg.OffsetDeleteResponse]{t: h.t}
		h.c.OffsetDelete(req, r.respond)
		return r.got.ErrorCode
	}},
}

// TestUnloadPartitionAnswersNotCoordinator: once a group's offsets
// partition is unloaded (it went offline), every request for the group is
// answered NOT_COORDINATOR, writes nothing and creates nothing, and no
// offset fetch says "nothing committed"; a group in another partition keeps
// its committed offset and is served as before.
func TestUnloadPartitionAnswersNotCoordinator(t *testing.T) {
	for _, tc := range groupRequests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, unloadConfig())
			lost, kept := groupsInTwoPartitions(t, h.cfg.OffsetsPartitions)
			for _, g := range []string{lost, kept} {
				if code := commitCode(h.commit(commitReq(g, "", -1, "t", 0, 5))); code != 0 {
					t.Fatalf("commit for %s: %d", g, code)
				}
			}
			h.c.UnloadPartition(OffsetsPartition(lost, h.cfg.OffsetsPartitions))
			appends := h.store.appends
			if code := tc.send(h, lost); code != kerr.NotCoordinator.Code {
				t.Fatalf("%s for a group of an unloaded partition: error %d, want NOT_COORDINATOR", tc.name, code)
			}
			if h.store.appends != appends || h.c.groups[lost] != nil {
				t.Fatalf("%s wrote %d records or recreated the group", tc.name, h.store.appends-appends)
			}
			if off, code := h.fetch(kept, "t", 0); code != 0 || off != 5 {
				t.Fatalf("group in a loaded partition: offset %d error %d, want 5 and none", off, code)
			}
		})
	}
}

// TestUnloadPartitionAnswersParkedRequests: a parked JoinGroup and a
// commit still being stored when the partition unloads are answered
// (NOT_COORDINATOR, and the Store's error), and the commit is not applied.
func TestUnloadPartitionAnswersParkedRequests(t *testing.T) {
	h := newHarness(t, unloadConfig())
	name, _ := groupsInTwoPartitions(t, h.cfg.OffsetsPartitions)
	ids, gen := h.stableGroup(name, 1)
	h.store.mode = storeDelayed
	commit := h.commit(commitReq(name, ids[0], gen, "t", 0, 9))
	joiner := h.joinNew(name)
	if commit.done() || joiner.done() {
		t.Fatal("the commit or the join was answered before the store or the rebalance")
	}
	h.c.UnloadPartition(OffsetsPartition(name, h.cfg.OffsetsPartitions))
	if !joiner.done() || joiner.got.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked join after unload: answered %v, error %d, want NOT_COORDINATOR", joiner.done(), joiner.got.ErrorCode)
	}
	h.store.fail(fmt.Errorf("%w: partition offline", ErrNotCoordinator))
	if !commit.done() || commitCode(commit) != kerr.NotCoordinator.Code {
		t.Fatalf("in-flight commit after unload: answered %v, want NOT_COORDINATOR", commit.done())
	}
	if h.clock.pending() != 0 {
		t.Fatalf("%d timers still armed for unloaded groups", h.clock.pending())
	}
	if _, code := h.fetch(name, "t", 0); code != kerr.NotCoordinator.Code {
		t.Fatalf("fetch after unload: error %d, want NOT_COORDINATOR", code)
	}
}

// TestUnloadedGroupsLeaveListGroups: ListGroups leaves out the groups of
// an unloaded partition, as Kafka's coordinator lists only the partitions
// it owns, and answers without an error.
func TestUnloadedGroupsLeaveListGroups(t *testing.T) {
	h := newHarness(t, unloadConfig())
	lost, kept := groupsInTwoPartitions(t, h.cfg.OffsetsPartitions)
	for _, g := range []string{lost, kept} {
		commitCode(h.commit(commitReq(g, "", -1, "t", 0, 5)))
	}
	h.c.UnloadPartition(OffsetsPartition(lost, h.cfg.OffsetsPartitions))
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 4
	r := &reply[*kmsg.ListGroupsResponse]{t: t}
	h.c.ListGroups(req, r.respond)
	if r.got.ErrorCode != 0 || len(r.got.Groups) != 1 || r.got.Groups[0].Group != kept {
		t.Fatalf("ListGroups after unload: error %d, groups %+v, want only %s", r.got.ErrorCode, r.got.Groups, kept)
	}
}

// TestReplayRefusesUnloadedPartition: records of an unloaded partition
// cannot bring its groups back behind the broker's back.
func TestReplayRefusesUnloadedPartition(t *testing.T) {
	h := newHarness(t, unloadConfig())
	lost, _ := groupsInTwoPartitions(t, h.cfg.OffsetsPartitions)
	commitCode(h.commit(commitReq(lost, "", -1, "t", 0, 5)))
	records := h.store.log
	h.c.Close()
	h.c = h.newCoordinator()
	h.c.UnloadPartition(OffsetsPartition(lost, h.cfg.OffsetsPartitions))
	if err := h.c.Replay(records[0].Key, records[0].Value); err == nil {
		t.Fatal("a record of an unloaded partition was replayed")
	}
	if h.c.groups[lost] != nil {
		t.Fatal("the replay created a group of an unloaded partition")
	}
}

// TestLoadPartitionServesFromTheLog: a coordinator that starts with every
// partition unloaded (a cluster broker before it leads any) answers
// NOT_COORDINATOR; loading one partition replays its records and serves
// its groups, with what was committed; unloading and loading again brings
// them back from the log; a replay that fails leaves the partition
// unloaded and keeps nothing of it.
func TestLoadPartitionServesFromTheLog(t *testing.T) {
	h := newHarness(t, unloadConfig())
	name, other := groupsInTwoPartitions(t, h.cfg.OffsetsPartitions)
	commitCode(h.commit(commitReq(name, "", -1, "t", 0, 5)))
	records := h.store.log
	replay := func(apply func(key, value []byte) error) error {
		for _, r := range records {
			if err := apply(r.Key, r.Value); err != nil {
				return err
			}
		}
		return nil
	}
	h.c.Close()
	cfg := h.cfg
	cfg.PartitionsStartUnloaded = true
	h.cfg = cfg
	h.c = h.newCoordinator()
	partition := OffsetsPartition(name, cfg.OffsetsPartitions)
	if _, code := h.fetch(name, "t", 0); code != kerr.NotCoordinator.Code {
		t.Fatalf("before loading: error %d, want NOT_COORDINATOR", code)
	}
	if err := h.c.LoadPartition(partition, replay); err != nil {
		t.Fatal(err)
	}
	if off, code := h.fetch(name, "t", 0); code != 0 || off != 5 {
		t.Fatalf("after loading: offset %d error %d, want 5", off, code)
	}
	if _, code := h.fetch(other, "t", 0); code != kerr.NotCoordinator.Code {
		t.Fatalf("a group of a partition not loaded: error %d, want NOT_COORDINATOR", code)
	}
	h.c.UnloadPartition(partition)
	if err := h.c.LoadPartition(partition, replay); err != nil {
		t.Fatal(err)
	}
	if off, code := h.fetch(name, "t", 0); code != 0 || off != 5 {
		t.Fatalf("after loading again: offset %d error %d, want 5", off, code)
	}
	h.c.UnloadPartition(partition)
	failing := func(apply func(key, value []byte) error) error {
		if err := replay(apply); err != nil {
			return err
		}
		return fmt.Errorf("the partition went offline while it was read")
	}
	if err := h.c.LoadPartition(partition, failing); err == nil || !h.c.PartitionUnloaded(partition) || h.c.groups[name] != nil {
		t.Fatalf("a failed load: error %v, unloaded %v, group kept %v", err, h.c.PartitionUnloaded(partition), h.c.groups[name] != nil)
	}
}
