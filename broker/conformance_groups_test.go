package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKgoDeletedTopicLosesCommittedOffsets checks issue 11 item 1 through
// franz-go: a group commits offsets on a topic, the topic is deleted and
// created again, and then (a) OffsetFetch no longer returns the old offsets,
// also after a restart, and (b) a member of the group applies its reset
// policy (here: the start) on the new topic instead of resuming at the old
// offset. Kafka's GroupMetadataManager.cleanupGroupMetadata removes a deleted
// topic's offsets from every group.
func TestKgoDeletedTopicLosesCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	r := startNode(t, dir, func(c *Config) { c.NumPartitions = 1 })
	admin := kadm.NewClient(newClient(t, r.addr))
	ctx := testContext(t)
	const topic, groupID = "recreated", "resetter"
	produce := func(count int) {
		producer := newClient(t, r.addr, kgo.DefaultProduceTopic(topic))
		for i := range count {
			if err := producer.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		producer.Close()
	}
	// consumeFirst joins the group, returns the offset of the first record
	// it receives, commits and leaves.
	consumeFirst := func() int64 {
		member := newClient(t, r.addr, kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		defer member.Close()
		for {
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fetches := member.PollFetches(pctx)
			cancel()
			if ctx.Err() != nil {
				t.Fatal("no record before the hang guard")
			}
			if records := fetches.Records(); len(records) > 0 {
				if err := member.CommitRecords(ctx, records[len(records)-1]); err != nil {
					t.Fatal(err)
				}
				member.LeaveGroup()
				return records[0].Offset
			}
		}
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce(5)
	if first := consumeFirst(); first != 0 {
		t.Fatalf("first consume starts at %d, want 0", first)
	}
	if _, err := admin.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	committed := func(when string, a *kadm.Client) {
		t.Helper()
		offsets, err := a.FetchOffsets(ctx, groupID)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offsets.Lookup(topic, 0); ok && o.At >= 0 {
			t.Fatalf("%s: group still has committed offset %d for the deleted topic", when, o.At)
		}
	}
	committed("after delete", admin)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce(10)
	if first := consumeFirst(); first != 0 {
		t.Fatalf("after re-create the group resumed at %d; its reset policy (start) gives 0", first)
	}
	// The new commit is legitimate; delete again and check that the
	// deletion survives a restart.
	if _, err := admin.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r2 := startNode(t, dir, func(c *Config) { c.NumPartitions = 1 })
	committed("after restart", kadm.NewClient(newClient(t, r2.addr)))
}
