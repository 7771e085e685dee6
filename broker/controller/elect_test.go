package controller

import (
	"testing"
	"time"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func electLeaders(electionType int8, partitions ...int32) *kmsg.ElectLeadersRequest {
	request := kmsg.NewPtrElectLeadersRequest()
	request.Version, request.ElectionType = 2, electionType
	if partitions == nil {
		return request
	}
	topic := kmsg.NewElectLeadersRequestTopic()
	topic.Topic, topic.Partitions = "orders", partitions
	request.Topics = append(request.Topics, topic)
	return request
}

// TestElectLeaders runs ElectLeaders against "orders" (replicas 1,2,3) in
// the state each case seeds, with broker 1 fenced when asked, and checks
// the partition's answer and its leader afterwards.
func TestElectLeaders(t *testing.T) {
	cases := []struct {
		name       string
		isr        []int32
		leader     int32
		fenceOne   bool
		request    *kmsg.ElectLeadersRequest
		want       *kerr.Error
		leaderNow  int32
		recovering bool
	}{
		{"preferred back to 1", []int32{1, 2}, 2, false, electLeaders(electionPreferred, 0), nil, 1, false},
		{"preferred already leads", []int32{1, 2}, 1, false, electLeaders(electionPreferred, 0), kerr.ElectionNotNeeded, 1, false},
		{"preferred out of sync", []int32{2}, 2, false, electLeaders(electionPreferred, 0), kerr.PreferredLeaderNotAvailable, 2, false},
		{"preferred fenced", []int32{1, 2}, 2, true, electLeaders(electionPreferred, 0), kerr.PreferredLeaderNotAvailable, 2, false},
		{"unclean with a live leader", []int32{1}, 1, false, electLeaders(electionUnclean, 0), kerr.ElectionNotNeeded, 1, false},
		{"unclean for a leaderless partition", []int32{1}, metadata.NoLeader, true, electLeaders(electionUnclean, 0), nil, 2, true},
		{"an unknown partition", []int32{1}, 1, false, electLeaders(electionPreferred, 5), kerr.UnknownTopicOrPartition, 1, false},
		{"listed twice: elected once", []int32{1, 2}, 2, false, electLeaders(electionPreferred, 0, 0), nil, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seed := seedOrders(c.isr, c.leader)
			if c.fenceOne {
				seed = append(seed, &metadata.FenceBrokerRecord{BrokerID: 1, BrokerEpoch: 1})
			}
			h := newHarness(t, nil, seed...)
			response := h.do(c.request).(*kmsg.ElectLeadersResponse)
			requireCode(t, "top level", response.ErrorCode, nil)
			if len(response.Topics) != 1 || len(response.Topics[0].Partitions) == 0 {
				t.Fatalf("answer %+v", response)
			}
			requireCode(t, "partition", response.Topics[0].Partitions[0].ErrorCode, c.want)
			partition := h.partition("orders", 0)
			if partition.Leader != c.leaderNow || partition.LeaderRecovering != c.recovering {
				t.Errorf("orders-0 %+v, want leader %d, recovering %t", partition, c.leaderNow, c.recovering)
			}
		})
	}
}

// TestElectLeadersForEveryPartition sends null topics: only partitions that
// needed an election are answered, and an unknown type is INVALID_REQUEST.
func TestElectLeadersForEveryPartition(t *testing.T) {
	h := newHarness(t, nil, seedOrders([]int32{1, 2}, 1)...)
	if response := h.do(electLeaders(electionPreferred)).(*kmsg.ElectLeadersResponse); len(response.Topics) != 0 {
		t.Errorf("a balanced cluster answered %+v, want no partitions", response.Topics)
	}
	bad := electLeaders(7)
	requireCode(t, "unknown type", h.do(bad).(*kmsg.ElectLeadersResponse).ErrorCode, kerr.InvalidRequest)
}

// TestAutoLeaderRebalance moves leadership back to the preferred replica on
// the first tick at or after each check interval, and only when enabled.
func TestAutoLeaderRebalance(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		h := newHarness(t, func(config *Config) { config.AutoLeaderRebalance = enabled }, seedOrders([]int32{1, 2}, 2)...)
		for id := int32(1); id <= 3; id++ {
			h.now = 299 * time.Second
			h.heartbeat(heartbeat(id, h.broker(id).Epoch, h.committed.AppliedOffset()))
		}
		h.c.Tick(h.now)
		h.commit()
		if h.partition("orders", 0).Leader != 2 {
			t.Fatal("rebalanced before the interval")
		}
		h.now = 300 * time.Second
		h.c.Tick(h.now)
		h.commit()
		if leader := h.partition("orders", 0).Leader; (leader == 1) != enabled {
			t.Errorf("rebalance enabled %t: leader %d", enabled, leader)
		}
	}
}
