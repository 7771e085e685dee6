package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitFetchAndGenerationChecks checks that a member of the current
// generation can commit and read back its offset, while a stale generation,
// an unknown member and a simple commit to a non-empty group are refused
// and change nothing.
func TestCommitFetchAndGenerationChecks(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	if r := h.commit(commitReq("g", ids[1], gen, "t", 0, 42)); !r.done() || commitCode(r) != 0 {
		t.Fatalf("commit: %+v", r.got)
	}
	for _, tc := range []struct {
		req  *kmsg.OffsetCommitRequest
		want int16
	}{
		{commitReq("g", ids[1], gen-1, "t", 0, 7), kerr.IllegalGeneration.Code},
		{commitReq("g", "stranger", gen, "t", 0, 7), kerr.UnknownMemberID.Code},
		{commitReq("g", "", -1, "t", 0, 7), kerr.UnknownMemberID.Code},
		{commitReq("", "", -1, "t", 0, 7), kerr.InvalidGroupID.Code},
		{commitReq("g", ids[0], gen, "", 0, 7), kerr.UnknownTopicOrPartition.Code},
	} {
		if r := h.commit(tc.req); !r.done() || commitCode(r) != tc.want {
			t.Errorf("commit %+v: got %+v, want %d", tc.req, r.got, tc.want)
		}
	}
	if off, code := h.fetch("g", "t", 0); off != 42 || code != 0 {
		t.Fatalf("fetch: offset %d code %d, want 42", off, code)
	}
	if off, _ := h.fetch("g", "t", 1); off != -1 {
		t.Fatalf("uncommitted partition: offset %d, want -1", off)
	}
	if off, code := h.fetch("other", "t", 0); off != -1 || code != 0 {
		t.Fatalf("unknown group: offset %d code %d", off, code)
	}
}

// TestCommitDuringSyncPhase checks REBALANCE_IN_PROGRESS for commits while
// the group waits for the leader's assignment, and that commits of the
// current generation are accepted during the join phase, as in Kafka.
func TestCommitDuringSyncPhase(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	h.join(joinReq("g", ids[0], 5)) // the leader rejoins: PreparingRebalance
	if r := h.commit(commitReq("g", ids[1], gen, "t", 0, 5)); commitCode(r) != 0 {
		t.Fatalf("commit during join phase: %+v", r.got)
	}
	h.join(joinReq("g", ids[1], 5)) // everyone joined: CompletingRebalance
	if r := h.commit(commitReq("g", ids[1], gen+1, "t", 0, 6)); commitCode(r) != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit during sync phase: %+v", r.got)
	}
}

// TestSimpleCommitCreatesGroup checks that a commit with generation -1 and
// no member id stores offsets for a group that does not exist yet, which is
// then listed as Empty.
func TestSimpleCommitCreatesGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	if r := h.commit(commitReq("simple", "", -1, "t", 3, 9)); commitCode(r) != 0 {
		t.Fatalf("simple commit: %+v", r.got)
	}
	if off, _ := h.fetch("simple", "t", 3); off != 9 {
		t.Fatalf("offset %d, want 9", off)
	}
	if st := h.c.groups["simple"].state; st != Empty {
		t.Fatalf("state %v", st)
	}
	r := h.commit(commitReq("nogroup", "m", 3, "t", 0, 1))
	if commitCode(r) != kerr.IllegalGeneration.Code || h.c.groups["nogroup"] != nil {
		t.Fatalf("member commit to unknown group: %+v", r.got)
	}
}

// TestCommitWaitsForDurability checks that a commit is answered, and its
// offset visible, only after the Store reports it durable, and that a failed
// write leaves the previous offset in place.
func TestCommitWaitsForDurability(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit(commitReq("g", "", -1, "t", 0, 1))
	h.store.mode = storeDelayed
	r := h.commit(commitReq("g", "", -1, "t", 0, 2))
	if r.done() {
		t.Fatal("commit answered before durable")
	}
	if off, _ := h.fetch("g", "t", 0); off != 1 {
		t.Fatalf("undurable offset visible: %d", off)
	}
	h.store.flush()
	if !r.done() || commitCode(r) != 0 {
		t.Fatalf("commit after flush: %+v", r.got)
	}
	if off, _ := h.fetch("g", "t", 0); off != 2 {
		t.Fatalf("offset %d after flush, want 2", off)
	}
	failed := h.commit(commitReq("g", "", -1, "t", 0, 3))
	h.store.fail(errStoreDown)
	if commitCode(failed) != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("failed commit: %+v", failed.got)
	}
	if off, _ := h.fetch("g", "t", 0); off != 2 {
		t.Fatalf("offset %d after failed commit, want 2", off)
	}
	h.store.mode = storeFailing
	if r := h.commit(commitReq("fresh", "", -1, "t", 0, 3)); commitCode(r) != kerr.CoordinatorNotAvailable.Code || h.c.groups["fresh"] != nil {
		t.Fatalf("failed first commit left a group: %+v", r.got)
	}
}

// TestReplayRestoresOffsetsAndMembers checks that after a restart, replaying
// the store's log restores committed offsets and the Stable group with its
// generation, so members carry on heartbeating without a rebalance.
func TestReplayRestoresOffsetsAndMembers(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	h.commit(commitReq("g", ids[0], gen, "t", 0, 10))
	h.commit(commitReq("g", ids[0], gen, "t", 0, 11))
	h.commit(commitReq("s", "", -1, "u", 1, 5))
	h.restart()
	if off, _ := h.fetch("g", "t", 0); off != 11 {
		t.Fatalf("replayed offset %d, want 11", off)
	}
	if off, _ := h.fetch("s", "u", 1); off != 5 {
		t.Fatalf("replayed simple offset %d, want 5", off)
	}
	g := h.c.groups["g"]
	if g.state != Stable || g.generation != gen || g.leader != ids[0] || len(g.members) != 2 {
		t.Fatalf("replayed group: state %v gen %d leader %q members %d", g.state, g.generation, g.leader, len(g.members))
	}
	if code := h.heartbeat("g", ids[1], gen); code != 0 {
		t.Fatalf("heartbeat after restart: %d", code)
	}
	s := h.sync(syncReq("g", ids[1], gen, nil))
	if string(s.got.MemberAssignment) != "a-"+ids[1] {
		t.Fatalf("assignment after restart: %+v", s.got)
	}
}

// TestReplayRejectsGarbage checks that malformed records give an error
// rather than a panic or a changed state.
func TestReplayRejectsGarbage(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, rec := range []StoreRecord{
		{Key: []byte{0}},
		{Key: []byte{0, 1, 0xff}, Value: []byte{1}},
		{Key: groupKey("g"), Value: []byte{0, 3, 1}},
		{Key: offsetKey("g", "t", 0), Value: []byte{0, 3}},
	} {
		if err := h.c.Replay(rec.Key, rec.Value); err == nil {
			t.Errorf("replay of %x/%x succeeded", rec.Key, rec.Value)
		}
	}
	if len(h.c.groups) != 0 {
		t.Fatalf("garbage created %d groups", len(h.c.groups))
	}
}

// TestOldOffsetVersions checks OffsetCommit v0 (no generation) and
// OffsetFetch v1 (no group error field) and v2 (null topics: all offsets).
func TestOldOffsetVersions(t *testing.T) {
	h := newHarness(t, testConfig())
	c := commitReq("g", "", -1, "b", 1, 7)
	c.Version = 0
	if r := h.commit(c); commitCode(r) != 0 {
		t.Fatalf("v0 commit: %+v", r.got)
	}
	h.commit(commitReq("g", "", -1, "a", 0, 3))
	f1 := kmsg.NewPtrOffsetFetchRequest()
	f1.Version = 1
	f1.Group = "g"
	f1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "b", Partitions: []int32{1}}}
	r1 := &reply[*kmsg.OffsetFetchResponse]{t: t}
	h.c.OffsetFetch(f1, r1.respond)
	if r1.got.Topics[0].Partitions[0].Offset != 7 {
		t.Fatalf("v1 fetch: %+v", r1.got)
	}
	f2 := kmsg.NewPtrOffsetFetchRequest()
	f2.Version = 2
	f2.Group = "g"
	r2 := &reply[*kmsg.OffsetFetchResponse]{t: t}
	h.c.OffsetFetch(f2, r2.respond)
	if len(r2.got.Topics) != 2 || r2.got.Topics[0].Topic != "a" || r2.got.Topics[1].Partitions[0].Offset != 7 {
		t.Fatalf("v2 fetch all: %+v", r2.got)
	}
}

// TestOffsetDelete checks that offsets of topics a consumer group subscribes
// to cannot be deleted, while others can, durably.
func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, testConfig())
	meta := kmsg.ConsumerMemberMetadata{Topics: []string{"sub"}}
	req := joinReq("g", "", 3)
	req.Protocols[0].Metadata = meta.AppendTo(nil)
	j := h.join(req)
	h.settle()
	h.commit(commitReq("g", j.got.MemberID, 1, "sub", 0, 1))
	h.commit(commitReq("g", j.got.MemberID, 1, "other", 0, 1))
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "sub", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "other", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	r := &reply[*kmsg.OffsetDeleteResponse]{t: t}
	h.c.OffsetDelete(del, r.respond)
	if r.got.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || r.got.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r.got)
	}
	if off, _ := h.fetch("g", "other", 0); off != -1 {
		t.Fatalf("deleted offset still %d", off)
	}
	h.restart()
	if off, _ := h.fetch("g", "other", 0); off != -1 {
		t.Fatalf("deleted offset back after restart: %d", off)
	}
}
