package client

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitsLeaveInOrder: a commit that must look up the coordinator is
// not overtaken by a later one that finds it already cached, as Kafka's
// consumer keeps its commits in order (sim seed 603303: a later commit
// overtook an earlier one and the group's offset went backwards).
func TestCommitsLeaveInOrder(t *testing.T) {
	tc := newTestCluster(t, 1)
	var committed []int64
	tc.chain(tc.brokers[0], func(_ *fakeConn, _ int32, req kmsg.Request) (kmsg.Response, bool) {
		r, ok := req.(*kmsg.OffsetCommitRequest)
		if !ok {
			return nil, false
		}
		committed = append(committed, r.Topics[0].Partitions[0].Offset)
		return offsetCommitAnswer(r, 0), true
	})
	c, err := NewConsumer(tc.cluster, DefaultConsumerConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	c.Commit([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 3003}}, func(error) { done++ })
	// Another path (a heartbeat, say) learns the coordinator while the
	// first commit's FindCoordinator is still on its way.
	tc.cluster.coordinators["g"] = 0
	tc.cluster.brokers[0] = brokerAddr("broker0", 9092)
	c.Commit([]PartitionOffset{{Topic: "t", Partition: 0, Offset: 3004}}, func(error) { done++ })
	tc.clock.runUntil(t, 10*time.Second, func() bool { return done == 2 })
	if !slices.Equal(committed, []int64{3003, 3004}) {
		t.Fatalf("the broker got commits %v, want [3003 3004]", committed)
	}
}
