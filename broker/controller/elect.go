package controller

// ElectLeaders (API key 43, versions 0-2) and the periodic preferred-leader
// rebalance (auto.leader.rebalance.enable).

import (
	"fmt"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Election types of ElectLeaders (version 0 knows only preferred).
const (
	electionPreferred int8 = 0
	electionUnclean   int8 = 1
)

// electLeaders elects the preferred replica, or for the unclean type any
// live replica of a leaderless partition, for the partitions listed, or
// for every partition when Topics is null; then only partitions where an
// election was needed are answered, as Kafka does. The unclean type is the
// operator's explicit choice and applies whatever the topic's setting.
func (c *Controller) electLeaders(request *kmsg.ElectLeadersRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrElectLeadersResponse()
	response.Version = request.Version
	if request.ElectionType != electionPreferred && request.ElectionType != electionUnclean {
		response.ErrorCode = kerr.InvalidRequest.Code
		return response, nil
	}
	d := c.newDecision()
	all := request.Topics == nil
	for _, wanted := range c.electionTargets(request) {
		answer := kmsg.NewElectLeadersResponseTopic()
		answer.Topic = wanted.Topic
		for _, partition := range wanted.Partitions {
			err := c.electOne(d, request.ElectionType, wanted.Topic, partition)
			if all && isCode(err, kerr.ElectionNotNeeded) {
				continue
			}
			result := kmsg.NewElectLeadersResponseTopicPartition()
			result.Partition = partition
			result.ErrorCode, result.ErrorMessage = codeAndMessage(err)
			answer.Partitions = append(answer.Partitions, result)
		}
		if len(answer.Partitions) > 0 || !all {
			response.Topics = append(response.Topics, answer)
		}
	}
	return response, d.records
}

func isCode(err error, code *kerr.Error) bool {
	got, _ := codeAndMessage(err)
	return got == code.Code
}

// electionTargets returns the listed partitions, or every partition of the
// working image by topic name and partition number.
func (c *Controller) electionTargets(request *kmsg.ElectLeadersRequest) []kmsg.ElectLeadersRequestTopic {
	if request.Topics != nil {
		return request.Topics
	}
	var targets []kmsg.ElectLeadersRequestTopic
	for _, name := range c.working.TopicNames() {
		topic, _ := c.working.TopicByName(name)
		target := kmsg.NewElectLeadersRequestTopic()
		target.Topic = name
		for _, partition := range topic.Partitions {
			target.Partitions = append(target.Partitions, partition.Partition)
		}
		targets = append(targets, target)
	}
	return targets
}

// electOne decides one partition against the scratch image, so that a
// partition listed twice is elected once and then needs no election.
func (c *Controller) electOne(d *decision, electionType int8, topicName string, partition int32) error {
	topic, ok := d.scratch.TopicByName(topicName)
	if !ok || partition < 0 || int(partition) >= len(topic.Partitions) {
		return fmt.Errorf("%w: no partition %s-%d", kerr.UnknownTopicOrPartition, topicName, partition)
	}
	state := topic.Partitions[partition]
	if electionType == electionPreferred {
		change, err := metadata.PreferredLeaderChange(state, d.scratch)
		if err != nil {
			return err
		}
		return d.add([]metadata.Record{&change})
	}
	if state.Leader != metadata.NoLeader && d.scratch.Live(state.Leader) {
		return fmt.Errorf("%w: %s-%d has the live leader %d", kerr.ElectionNotNeeded, topicName, partition, state.Leader)
	}
	change, ok := metadata.ElectLeader(state, d.scratch, true)
	if !ok || change.Leader == metadata.NoLeader {
		return fmt.Errorf("%w: no live replica of %s-%d", kerr.EligibleLeadersNotAvailable, topicName, partition)
	}
	return d.add([]metadata.Record{&change})
}

// rebalance hands up to rebalanceElectionsMax partitions back to their
// preferred replica, where it is live and in sync, in one entry. Kafka's
// KRaft controller does the same without a per-broker imbalance threshold.
func (c *Controller) rebalance() {
	var records []metadata.Record
	for _, name := range c.working.TopicNames() {
		topic, _ := c.working.TopicByName(name)
		for _, partition := range topic.Partitions {
			if len(records) == rebalanceElectionsMax {
				break
			}
			if change, err := metadata.PreferredLeaderChange(partition, c.working); err == nil {
				records = append(records, &change)
			}
		}
	}
	if len(records) > 0 {
		_, _ = c.propose(records) // a refused rebalance waits for the next interval
	}
}
