package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterISR builds an AlterPartition (version 2, by topic id) from broker
// leader of "orders"-0 asking for isr at the given epochs.
func alterISR(leader int32, brokerEpoch int64, leaderEpoch, partitionEpoch int32, isr ...int32) *kmsg.AlterPartitionRequest {
	request := kmsg.NewPtrAlterPartitionRequest()
	request.Version = 2
	request.BrokerID, request.BrokerEpoch = leader, brokerEpoch
	topic := kmsg.NewAlterPartitionRequestTopic()
	topic.TopicID = ordersID
	p := kmsg.NewAlterPartitionRequestTopicPartition()
	p.Partition, p.LeaderEpoch, p.PartitionEpoch, p.NewISR = 0, leaderEpoch, partitionEpoch, isr
	topic.Partitions = append(topic.Partitions, p)
	request.Topics = append(request.Topics, topic)
	return request
}

// TestAlterPartition walks Kafka's checks from a committed image where
// broker 1 leads "orders"-0 (replicas 1,2,3, ISR 1, leader epoch 0,
// partition epoch 0): each refusal leaves the partition as it was, and an
// accepted change commits the new ISR with the partition epoch bumped and
// the leader epoch kept.
func TestAlterPartition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		request func(h *harness) *kmsg.AlterPartitionRequest
		prepare func(h *harness)
		want    *kerr.Error
		top     bool
	}{
		{name: "expand the ISR", request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 0, 1, 2, 3)
		}},
		{name: "stale broker epoch", top: true, want: kerr.StaleBrokerEpoch, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch+5, 0, 0, 1, 2)
		}},
		{name: "not the leader", want: kerr.InvalidRequest, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(2, h.broker(2).Epoch, 0, 0, 1, 2)
		}},
		{name: "old partition epoch", want: kerr.InvalidUpdateVersion, prepare: func(h *harness) {
			h.do(alterISR(1, h.broker(1).Epoch, 0, 0, 1, 2))
		}, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 0, 1, 2, 3)
		}},
		{name: "newer epochs than the controller's", want: kerr.NotController, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 7, 1, 2)
		}},
		{name: "leader left out", want: kerr.InvalidRequest, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 0, 2, 3)
		}},
		{name: "not a replica", want: kerr.InvalidRequest, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 0, 1, 4)
		}},
		{name: "a fenced member", want: kerr.IneligibleReplica, prepare: func(h *harness) {
			h.heartbeat(func() *kmsg.BrokerHeartbeatRequest {
				r := heartbeat(3, h.broker(3).Epoch, h.committed.AppliedOffset())
				r.WantFence = true
				return r
			}())
		}, request: func(h *harness) *kmsg.AlterPartitionRequest {
			return alterISR(1, h.broker(1).Epoch, 0, 0, 1, 3)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, seedOrders([]int32{1}, 1)...)
			if tc.prepare != nil {
				tc.prepare(h)
			}
			before := h.partition("orders", 0)
			response := h.do(tc.request(h)).(*kmsg.AlterPartitionResponse)
			after := h.partition("orders", 0)
			if tc.top {
				requireCode(t, tc.name, response.ErrorCode, tc.want)
			} else {
				requireCode(t, tc.name, response.ErrorCode, nil)
				requireCode(t, tc.name, response.Topics[0].Partitions[0].ErrorCode, tc.want)
			}
			if tc.want != nil {
				if after.PartitionEpoch != before.PartitionEpoch || !slices.Equal(after.ISR, before.ISR) {
					t.Fatalf("a refused change moved the partition from %+v to %+v", before, after)
				}
				return
			}
			answer := response.Topics[0].Partitions[0]
			if !slices.Equal(after.ISR, []int32{1, 2, 3}) || after.PartitionEpoch != before.PartitionEpoch+1 ||
				after.LeaderEpoch != before.LeaderEpoch || answer.PartitionEpoch != after.PartitionEpoch || !slices.Equal(answer.ISR, after.ISR) {
				t.Fatalf("after the change %+v, answer %+v", after, answer)
			}
		})
	}
}
