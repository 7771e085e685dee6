package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a TopicChecker over a fixed set of topics, each with one
// partition.
type fakeTopics []string

func (f fakeTopics) PartitionExists(topic string, partition int32) bool {
	for _, t := range f {
		if t == topic && partition == 0 {
			return true
		}
	}
	return false
}

// TestDeleteTopicOffsets checks that deleting a topic forgets its committed
// offsets in every group (a Stable group and an Empty one), keeps the other
// topics' offsets, survives a restart (tombstones were written), and removes
// a simple-commit group left with nothing. Kafka does the same in
// GroupMetadataManager.cleanupGroupMetadata when a topic is deleted.
func TestDeleteTopicOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("stable", 1)
	for _, topic := range []string{"gone", "kept"} {
		if code := commitCode(h.commit(commitReq("stable", ids[0], gen, topic, 0, 7))); code != 0 {
			t.Fatalf("commit %s: %d", topic, code)
		}
	}
	if code := commitCode(h.commit(commitReq("simple", "", -1, "gone", 0, 3))); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	finished := 0
	if affected := h.c.DeleteTopicOffsets([]string{"gone"}, func() { finished++ }); affected != 2 || finished != 1 {
		t.Fatalf("%d groups affected, done called %d times; want 2 and 1", affected, finished)
	}
	check := func(when string) {
		t.Helper()
		if off, _ := h.fetch("stable", "gone", 0); off != -1 {
			t.Fatalf("%s: deleted topic's offset still %d", when, off)
		}
		if off, _ := h.fetch("stable", "kept", 0); off != 7 {
			t.Fatalf("%s: other topic's offset %d, want 7", when, off)
		}
		if off, _ := h.fetch("simple", "gone", 0); off != -1 {
			t.Fatalf("%s: simple group's offset still %d", when, off)
		}
	}
	check("before restart")
	if h.c.groups["simple"] != nil {
		t.Fatal("a group left with no offsets and no members is still listed")
	}
	h.restart()
	check("after restart")
}

// TestDeleteTopicOffsetsWaitsForDurability checks that offsets are forgotten
// only once their tombstones are durable, and kept when the write fails, so
// that memory never disagrees with what a restart replays.
func TestDeleteTopicOffsetsWaitsForDurability(t *testing.T) {
	h := newHarness(t, testConfig())
	h.commit(commitReq("g", "", -1, "gone", 0, 5))
	h.store.mode = storeDelayed
	finished := 0
	h.c.DeleteTopicOffsets([]string{"gone"}, func() { finished++ })
	if off, _ := h.fetch("g", "gone", 0); off != 5 || finished != 0 {
		t.Fatalf("offset %d (done %d) before the tombstone is durable, want 5 (0)", off, finished)
	}
	h.store.fail(errStoreDown)
	if off, _ := h.fetch("g", "gone", 0); off != 5 || finished != 1 {
		t.Fatalf("offset %d (done %d) after a failed tombstone write, want 5 (1)", off, finished)
	}
	h.store.mode = storeImmediate
	h.c.DeleteTopicOffsets([]string{"gone"}, func() { finished++ })
	if off, _ := h.fetch("g", "gone", 0); off != -1 || finished != 2 {
		t.Fatalf("offset %d (done %d) after the tombstone is durable, want -1 (2)", off, finished)
	}
	if h.c.DeleteTopicOffsets([]string{"gone"}, func() { finished++ }); finished != 3 {
		t.Fatal("done not called at once when there is nothing to delete")
	}
}

// TestDeleteOffsetsOfMissingPartitions checks the startup cleanup: offsets
// of partitions the catalog no longer has are tombstoned, others are kept.
func TestDeleteOffsetsOfMissingPartitions(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, topic := range []string{"gone", "kept"} {
		h.commit(commitReq("g", "", -1, topic, 0, 4))
	}
	h.c.Close()
	c, err := NewCoordinator(h.clock, h.c.rand, h.c.log, h.cfg, h.store, fakeTopics{"kept"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.store.log {
		if err := c.Replay(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	h.c = c
	if affected := c.DeleteOffsetsOfMissingPartitions(func() {}); affected != 1 {
		t.Fatalf("%d groups affected, want 1", affected)
	}
	if off, _ := h.fetch("g", "gone", 0); off != -1 {
		t.Fatalf("missing topic's offset still %d", off)
	}
	if off, _ := h.fetch("g", "kept", 0); off != 4 {
		t.Fatalf("existing topic's offset %d, want 4", off)
	}
	last := h.store.log[len(h.store.log)-1]
	k := kmsg.NewOffsetCommitKey()
	if err := k.ReadFrom(last.Key); err != nil || k.Topic != "gone" || last.Value != nil {
		t.Fatalf("last record is not the tombstone of gone-0: %+v %v", k, err)
	}
}

// TestDeleteTopicOffsetsCoversCommitsInFlight checks a commit that is still
// being stored when the topic is deleted: the Store completes it after the
// deletion started, and the tombstone written after it must still win,
// in memory and after a restart.
func TestDeleteTopicOffsetsCoversCommitsInFlight(t *testing.T) {
	h := newHarness(t, testConfig())
	h.store.mode = storeDelayed
	commit := h.commit(commitReq("g", "", -1, "gone", 0, 9))
	if affected := h.c.DeleteTopicOffsets([]string{"gone"}, func() {}); affected != 1 {
		t.Fatalf("%d groups affected, want 1 (the commit in flight)", affected)
	}
	h.store.flush()
	if !commit.done() || commitCode(commit) != 0 {
		t.Fatalf("commit: %+v", commit.got)
	}
	if off, _ := h.fetch("g", "gone", 0); off != -1 {
		t.Fatalf("offset %d after deletion, want -1", off)
	}
	h.store.mode = storeImmediate
	h.restart()
	if off, _ := h.fetch("g", "gone", 0); off != -1 {
		t.Fatalf("offset %d after restart, want -1", off)
	}
}
