package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/metadata"
)

// Leader recovery states of AlterPartition (Kafka's LeaderRecoveryState).
const (
	leaderRecovered  int8 = 0
	leaderRecovering int8 = 1
)

// alterPartition decides AlterPartition, a partition leader's request to
// change its ISR (or to say it has recovered from an unclean election), as
// Kafka's ReplicationControlManager does. The broker must be registered at
// the epoch it names (else STALE_BROKER_EPOCH for the whole request). Each
// partition is then checked in Kafka's order: the topic and partition exist
// (UNKNOWN_TOPIC_ID or UNKNOWN_TOPIC_OR_PARTITION); the sender leads it
// (INVALID_REQUEST); its leader epoch and partition epoch are the current
// ones (older: FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION; newer, which
// this controller has not seen: NOT_CONTROLLER); the new ISR is made of
// distinct replicas and holds the leader, a recovering leader stays alone
// and a recovered one never goes back to recovering (INVALID_REQUEST); and
// every new member is live, at the broker epoch the request names from
// version 3 (INELIGIBLE_REPLICA). The accepted changes commit as one entry
// of partition changes, each bumping the partition epoch, and the answer
// carries every partition's new state. Members joining the ISR leave the
// ELR, which stays disjoint from it. Until partitions replicate
// (docs/cluster.md) no broker sends it.
func (c *Controller) alterPartition(request *kmsg.AlterPartitionRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrAlterPartitionResponse()
	response.Version = request.Version
	broker, ok := c.working.Broker(request.BrokerID)
	if !ok || broker.Epoch != request.BrokerEpoch {
		response.ErrorCode = kerr.StaleBrokerEpoch.Code
		return response, nil
	}
	d := c.newDecision()
	for _, topic := range request.Topics {
		answer := kmsg.NewAlterPartitionResponseTopic()
		answer.Topic, answer.TopidID = topic.Topic, topic.TopicID
		found, known := c.alterPartitionTopic(d.scratch, request.Version, topic)
		for _, p := range topic.Partitions {
			result := kmsg.NewAlterPartitionResponseTopicPartition()
			result.Partition = p.Partition
			var err error
			if !known {
				err = kerr.UnknownTopicOrPartition
				if request.Version >= 2 {
					err = kerr.UnknownTopicID
				}
			} else {
				err = c.alterOnePartition(d, request, found, p, &result)
			}
			if err != nil {
				result.ErrorCode, _ = codeAndMessage(err)
				result.LeaderID, result.LeaderEpoch = metadata.NoLeader, -1
			}
			answer.Partitions = append(answer.Partitions, result)
		}
		response.Topics = append(response.Topics, answer)
	}
	return response, d.records
}

// alterPartitionTopic finds a request topic by name (versions 0-1) or id.
func (c *Controller) alterPartitionTopic(image *metadata.Image, version int16, topic kmsg.AlterPartitionRequestTopic) (metadata.Topic, bool) {
	if version >= 2 {
		return image.TopicByID(metadata.TopicID(topic.TopicID))
	}
	return image.TopicByName(topic.Topic)
}

// alterOnePartition checks one partition's change and adds its record.
func (c *Controller) alterOnePartition(d *decision, request *kmsg.AlterPartitionRequest, topic metadata.Topic,
	p kmsg.AlterPartitionRequestTopicPartition, result *kmsg.AlterPartitionResponseTopicPartition,
) error {
	if p.Partition < 0 || int(p.Partition) >= len(topic.Partitions) {
		return fmt.Errorf("%w: %s has no partition %d", kerr.UnknownTopicOrPartition, topic.Name, p.Partition)
	}
	state, _ := d.scratch.Partition(topic.ID, p.Partition)
	newISR := p.NewISR
	if request.Version >= 3 {
		newISR = nil
		for _, member := range p.NewEpochISR {
			newISR = append(newISR, member.BrokerID)
		}
	}
	switch {
	case state.Leader != request.BrokerID:
		return fmt.Errorf("%w: broker %d does not lead %s-%d (leader %d)", kerr.InvalidRequest, request.BrokerID, topic.Name, p.Partition, state.Leader)
	case p.LeaderEpoch < state.LeaderEpoch:
		return fmt.Errorf("%w: leader epoch %d, current %d", kerr.FencedLeaderEpoch, p.LeaderEpoch, state.LeaderEpoch)
	case p.LeaderEpoch > state.LeaderEpoch || p.PartitionEpoch > state.PartitionEpoch:
		return fmt.Errorf("%w: epochs %d/%d are newer than this controller's %d/%d", kerr.NotController,
			p.LeaderEpoch, p.PartitionEpoch, state.LeaderEpoch, state.PartitionEpoch)
	case p.PartitionEpoch < state.PartitionEpoch:
		return fmt.Errorf("%w: partition epoch %d, current %d", kerr.InvalidUpdateVersion, p.PartitionEpoch, state.PartitionEpoch)
	case p.LeaderRecoveryState != leaderRecovered && p.LeaderRecoveryState != leaderRecovering,
		p.LeaderRecoveryState == leaderRecovering && !state.LeaderRecovering:
		return fmt.Errorf("%w: leader recovery state %d after %v", kerr.InvalidRequest, p.LeaderRecoveryState, state.LeaderRecovering)
	case !slices.Contains(newISR, state.Leader):
		return fmt.Errorf("%w: the new ISR %v leaves out the leader %d", kerr.InvalidRequest, newISR, state.Leader)
	case p.LeaderRecoveryState == leaderRecovering && len(newISR) > 1:
		return fmt.Errorf("%w: a recovering leader's ISR must be itself alone, not %v", kerr.InvalidRequest, newISR)
	}
	for i, member := range newISR {
		if slices.Contains(newISR[:i], member) || !slices.Contains(state.Replicas, member) {
			return fmt.Errorf("%w: the new ISR %v repeats a broker or names one that is not a replica of %v", kerr.InvalidRequest, newISR, state.Replicas)
		}
		registered, ok := d.scratch.Broker(member)
		eligible := ok && d.scratch.Live(member)
		if request.Version >= 3 && ok {
			eligible = eligible && registered.Epoch == p.NewEpochISR[i].BrokerEpoch
		}
		if !eligible {
			return fmt.Errorf("%w: broker %d is fenced, shutting down or of another incarnation", kerr.IneligibleReplica, member)
		}
	}
	next := state
	next.ISR = slices.Clone(newISR)
	next.ELR = slices.DeleteFunc(slices.Clone(state.ELR), func(b int32) bool { return slices.Contains(newISR, b) })
	next.LeaderRecovering = p.LeaderRecoveryState == leaderRecovering
	next.PartitionEpoch++
	if err := d.add([]metadata.Record{&metadata.PartitionChangeRecord{PartitionState: next}}); err != nil {
		return err
	}
	result.LeaderID, result.LeaderEpoch, result.ISR = next.Leader, next.LeaderEpoch, slices.Clone(next.ISR)
	result.PartitionEpoch = next.PartitionEpoch
	if next.LeaderRecovering {
		result.LeaderRecoveryState = leaderRecovering
	}
	return nil
}
