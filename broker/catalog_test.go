package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
	"github.com/kafkasim/kafkasim/sim"
)

// TestRestartsWithReadFlipsKeepTopicsAndData restarts a broker many times
// on a disk that flips bits on 5% of reads. Found by 'sim --seed 350
// --faults all': a flipped byte in topics.json renamed a topic, and the
// broker deleted the real topic's directories as leftovers. Every restart
// must now see the same topic with every synced record.
func TestRestartsWithReadFlipsKeepTopicsAndData(t *testing.T) {
	b := newSimBrokerOnDisk(t, 350, sim.DiskOptions{ReadBitFlipProbability: 0.05}, func(c *Config) { c.FlushIntervalMessages = 1 })
	createTopic(t, b, "kept", 2)
	for i := range 10 {
		if code, _ := produceCode(t, b, produceRequest(t, "kept", int32(i%2), -1, record.NewBatchSpec(record.CodecNone), "v")); code != 0 {
			t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(code))
		}
	}
	for restart := range 200 {
		b.kill(t)
		for partition := range int32(2) {
			p := b.node.catalog.partition("kept", partition)
			if p == nil {
				t.Fatalf("restart %d: topic lost", restart)
			}
			if end := p.log.LogEndOffset(); end != 5 {
				t.Fatalf("restart %d: partition %d ends at %d, want 5", restart, partition, end)
			}
		}
	}
}

// TestDeleteIsFinishedAfterACrash deletes a topic and crashes at every
// point of the deletion: the intent is durable first, so a restart either
// still has the topic (the intent was not yet durable) or has no trace of
// it, and never resurrects an empty topic or sets data aside.
func TestDeleteIsFinishedAfterACrash(t *testing.T) {
	for failAfter := 0; failAfter < 12; failAfter++ {
		b := newSimBroker(t, 9, func(c *Config) { c.FlushIntervalMessages = 1 })
		createTopic(t, b, "doomed", 2)
		produceCode(t, b, produceRequest(t, "doomed", 0, -1, record.NewBatchSpec(record.CodecNone), "x"))
		// Fail every disk operation after the first failAfter ones of the
		// deletion, then lose power.
		b.disk.InjectFault(sim.DiskFault{After: failAfter, Err: errInjected})
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.SetVersion(4)
		req.TopicNames = []string{"doomed"}
		b.roundTrip(t, req)
		b.disk.ClearFaults()
		b.crash(t)
		entries, err := b.disk.ReadDir("data")
		if err != nil {
			t.Fatal(err)
		}
		p := b.node.catalog.partition("doomed", 0)
		for _, e := range entries {
			if strings.Contains(e.Name, orphanedSuffix) || strings.Contains(e.Name, deletedSuffix) {
				t.Fatalf("failAfter %d: leftover %s", failAfter, e.Name)
			}
			if strings.HasPrefix(e.Name, "doomed-") && p == nil {
				t.Fatalf("failAfter %d: topic gone but %s remains", failAfter, e.Name)
			}
		}
		if p != nil && p.log.LogEndOffset() != 1 {
			t.Fatalf("failAfter %d: topic kept but its data is gone (end %d)", failAfter, p.log.LogEndOffset())
		}
	}
}

// TestCommittedOffsetsSurviveRetention commits an offset for one
// partition once, then commits another partition many times on a broker
// whose retention would delete all but the newest segment, runs retention,
// restarts, and reads the first commit back. Found by the simulator
// ('retention' with crashes): retention deleted old segments of
// __consumer_offsets, and groups resumed from stale offsets. Kafka compacts
// that topic; it must never be deleted by size or time.
func TestCommittedOffsetsSurviveRetention(t *testing.T) {
	b := newSimBroker(t, 12, func(c *Config) {
		c.SegmentBytes = 200
		c.RetentionBytes = 200
	})
	createTopic(t, b, "orders", 2)
	commit := func(partition int32, offset int64) {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(2)
		req.Group, req.Generation = "g", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = partition, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := b.roundTrip(t, req).(*kmsg.OffsetCommitResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %d: %v", offset, kerr.ErrorForCode(code))
		}
	}
	commit(0, 5)
	for offset := int64(1); offset <= 30; offset++ {
		commit(1, offset)
	}
	b.node.catalog.enforceRetention(b.node.now())
	b.kill(t)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(3)
	req.Group = "g"
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "orders", []int32{0, 1}
	req.Topics = append(req.Topics, rt)
	resp := b.roundTrip(t, req).(*kmsg.OffsetFetchResponse)
	got := map[int32]int64{}
	for _, p := range resp.Topics[0].Partitions {
		got[p.Partition] = p.Offset
	}
	if got[0] != 5 || got[1] != 30 {
		t.Fatalf("committed offsets after retention and restart: %v, want 0:5 1:30", got)
	}
}
