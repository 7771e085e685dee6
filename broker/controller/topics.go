package controller

// CreateTopics (API key 19), DeleteTopics (20) and CreatePartitions (37), at
// every version kmsg knows: each topic is decided alone, in request order,
// against a scratch copy of the working image that holds the topics decided
// before it, so two topics of one request are placed as if created one
// after the other. The valid topics' records are proposed as one entry, so
// they commit together or not at all; the invalid ones get their error.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kafkasim/kafkasim/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// decision accumulates one request's records on a scratch image.
type decision struct {
	scratch *metadata.Image
	records []metadata.Record
}

func (c *Controller) newDecision() *decision {
	return &decision{scratch: c.working.Clone()}
}

// add applies a topic's (or partition's) records to the scratch image, all
// or none, and keeps them; it refuses records that would make the request
// exceed recordsPerRequestMax.
func (d *decision) add(records []metadata.Record) error {
	if len(d.records)+len(records) > recordsPerRequestMax {
		return fmt.Errorf("%w: the request would commit more than %d records", kerr.InvalidRequest, recordsPerRequestMax)
	}
	offset := d.scratch.AppliedOffset() + 1
	if err := d.scratch.ApplyRecord(offset, d.scratch.AppliedEpoch(), &metadata.BatchRecord{Records: records}); err != nil {
		return fmt.Errorf("%w: %w", kerr.InvalidRequest, err)
	}
	d.records = append(d.records, records...)
	return nil
}

// codeAndMessage splits an error that wraps a *kerr.Error into its code and
// a message for the response's ErrorMessage.
func codeAndMessage(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	code := kerr.UnknownServerError.Code
	var kafkaError *kerr.Error
	if errors.As(err, &kafkaError) {
		code = kafkaError.Code
	}
	message := err.Error()
	return code, &message
}

// duplicates returns the names that appear more than once.
func duplicates[T any](items []T, name func(T) string) map[string]bool {
	counts, repeated := map[string]int{}, map[string]bool{}
	for _, item := range items {
		counts[name(item)]++
		repeated[name(item)] = counts[name(item)] > 1
	}
	return repeated
}

func (c *Controller) createTopics(request *kmsg.CreateTopicsRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrCreateTopicsResponse()
	response.Version = request.Version
	repeated := duplicates(request.Topics, func(t kmsg.CreateTopicsRequestTopic) string { return t.Topic })
	d := c.newDecision()
	for _, topic := range request.Topics {
		answer := kmsg.NewCreateTopicsResponseTopic()
		answer.Topic = topic.Topic
		answer.NumPartitions, answer.ReplicationFactor = -1, -1
		var err error
		if repeated[topic.Topic] {
			err = fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, topic.Topic)
		} else {
			err = c.createTopic(d, topic, &answer)
		}
		answer.ErrorCode, answer.ErrorMessage = codeAndMessage(err)
		response.Topics = append(response.Topics, answer)
	}
	if request.ValidateOnly {
		return response, nil
	}
	return response, d.records
}

// createTopic checks one topic in Kafka's order (name, existence, counts,
// configs, placement), adds its records to the decision and fills its
// answer.
func (c *Controller) createTopic(d *decision, topic kmsg.CreateTopicsRequestTopic, answer *kmsg.CreateTopicsResponseTopic) error {
	if err := metadata.ValidateTopicName(topic.Topic); err != nil {
		return fmt.Errorf("%w: %w", kerr.InvalidTopicException, err)
	}
	if _, exists := d.scratch.TopicByName(topic.Topic); exists {
		return fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, topic.Topic)
	}
	replicas, err := c.topicReplicas(d.scratch, topic)
	if err != nil {
		return err
	}
	configs, err := c.topicConfigs(topic)
	if err != nil {
		return err
	}
	id := c.newTopicID(d.scratch)
	records := []metadata.Record{&metadata.TopicRecord{Name: topic.Topic, ID: id}}
	for partition, assignment := range replicas {
		state, err := newPartition(d.scratch, id, int32(partition), assignment)
		if err != nil {
			return err
		}
		records = append(records, &metadata.PartitionRecord{PartitionState: state})
	}
	for _, config := range configs {
		records = append(records, &metadata.ConfigRecord{
			Resource: metadata.ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: topic.Topic}, Name: config.Name, Value: config.Value,
		})
	}
	if err := d.add(records); err != nil {
		return err
	}
	answer.TopicID = id
	answer.NumPartitions, answer.ReplicationFactor = int32(len(replicas)), int16(len(replicas[0]))
	return nil
}

// topicReplicas returns the replicas of each new partition: the request's
// own assignment, or metadata.PlaceReplicas with -1 meaning the default.
func (c *Controller) topicReplicas(image *metadata.Image, topic kmsg.CreateTopicsRequestTopic) ([][]int32, error) {
	if len(topic.ReplicaAssignment) > 0 {
		if topic.NumPartitions != -1 || topic.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: a replica assignment needs -1 partitions and replication factor", kerr.InvalidRequest)
		}
		assignments := make([][]int32, 0, len(topic.ReplicaAssignment))
		for index, assignment := range topic.ReplicaAssignment {
			if int(assignment.Partition) != index {
				return nil, fmt.Errorf("%w: assigned partitions must be numbered 0 to n-1 in order", kerr.InvalidReplicaAssignment)
			}
			assignments = append(assignments, assignment.Replicas)
		}
		return assignments, checkAssignments(image, assignments, len(assignments[0]))
	}
	partitions, factor := topic.NumPartitions, topic.ReplicationFactor
	if partitions == -1 {
		partitions = c.config.DefaultPartitions
	}
	if factor == -1 {
		factor = c.config.DefaultReplicationFactor
	}
	if partitions < 1 || partitions > partitionsPerTopicMax {
		return nil, fmt.Errorf("%w: %d partitions, want 1 to %d (or -1 for num.partitions)", kerr.InvalidPartitions, partitions, partitionsPerTopicMax)
	}
	return metadata.PlaceReplicas(image, int(partitions), int(factor))
}

// checkAssignments validates manual assignments: each of the given
// replication factor, of distinct registered brokers, with one that may lead.
func checkAssignments(image *metadata.Image, assignments [][]int32, factor int) error {
	if len(assignments) > partitionsPerTopicMax {
		return fmt.Errorf("%w: %d partitions, want at most %d", kerr.InvalidPartitions, len(assignments), partitionsPerTopicMax)
	}
	for index, replicas := range assignments {
		if len(replicas) == 0 || len(replicas) != factor {
			return fmt.Errorf("%w: partition %d has %d replicas, want %d", kerr.InvalidReplicaAssignment, index, len(replicas), factor)
		}
		for position, broker := range replicas {
			if _, ok := image.Broker(broker); !ok || slices.Contains(replicas[:position], broker) {
				return fmt.Errorf("%w: broker %d of partition %d is unregistered or repeated", kerr.InvalidReplicaAssignment, broker, index)
			}
		}
		if leader(image, replicas) == metadata.NoLeader {
			return fmt.Errorf("%w: every replica of partition %d is fenced or shutting down", kerr.InvalidReplicaAssignment, index)
		}
	}
	return nil
}

// leader returns the first replica that may lead, or NoLeader.
func leader(image *metadata.Image, replicas []int32) int32 {
	for _, broker := range replicas {
		if image.Live(broker) {
			return broker
		}
	}
	return metadata.NoLeader
}

// newPartition is a new partition's first state: the leader alone in the
// ISR, whatever the replication factor. The followers join through the
// leader's AlterPartition once they have fetched (docs/replication.md);
// none is in the ISR before, so none could be elected without the data.
func newPartition(image *metadata.Image, id metadata.TopicID, partition int32, replicas []int32) (metadata.PartitionState, error) {
	first := leader(image, replicas)
	if first == metadata.NoLeader {
		return metadata.PartitionState{}, fmt.Errorf("%w: no replica of partition %d may lead", kerr.BrokerNotAvailable, partition)
	}
	return metadata.PartitionState{
		TopicID: id, Partition: partition, Replicas: slices.Clone(replicas),
		ISR: []int32{first}, ELR: []int32{}, Leader: first,
	}, nil
}

// topicConfigs validates a new topic's configurations: each set once, with
// a value, unclean.leader.election.enable true or false, and, when the
// broker supplied TopicConfigs, every setting one the brokers accept, so
// that no broker refuses to create the topic's partitions.
func (c *Controller) topicConfigs(topic kmsg.CreateTopicsRequestTopic) ([]kmsg.CreateTopicsRequestTopicConfig, error) {
	seen := map[string]bool{}
	var changes []kmsg.IncrementalAlterConfigsRequestResourceConfig
	for _, config := range topic.Configs {
		switch {
		case config.Value == nil:
			return nil, fmt.Errorf("%w: config %q has no value", kerr.InvalidConfig, config.Name)
		case seen[config.Name]:
			return nil, fmt.Errorf("%w: config %q is set twice", kerr.InvalidConfig, config.Name)
		case config.Name == uncleanConfigName && *config.Value != "true" && *config.Value != "false":
			return nil, fmt.Errorf("%w: %s must be true or false, have %q", kerr.InvalidConfig, uncleanConfigName, *config.Value)
		}
		seen[config.Name] = true
		change := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		change.Name, change.Op, change.Value = config.Name, kmsg.IncrementalAlterConfigOpSet, config.Value
		changes = append(changes, change)
	}
	if c.config.TopicConfigs != nil {
		if _, err := c.config.TopicConfigs(nil, changes); err != nil {
			return nil, fmt.Errorf("%w: %w", kerr.InvalidConfig, err)
		}
	}
	return topic.Configs, nil
}

// newTopicID draws a random, non-zero topic ID not yet taken.
func (c *Controller) newTopicID(image *metadata.Image) metadata.TopicID {
	for {
		var id metadata.TopicID
		c.config.Rand.Fill(id[:])
		if _, taken := image.TopicByID(id); !taken && !id.IsZero() {
			return id
		}
	}
}

func (c *Controller) deleteTopics(request *kmsg.DeleteTopicsRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrDeleteTopicsResponse()
	response.Version = request.Version
	d := c.newDecision()
	deleted := map[metadata.TopicID]bool{}
	for _, wanted := range deleteTargets(request) {
		answer := kmsg.NewDeleteTopicsResponseTopic()
		answer.Topic, answer.TopicID = wanted.Topic, wanted.TopicID
		topic, err := c.deleteTarget(wanted)
		if err == nil && deleted[topic.ID] {
			err = fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, topic.Name)
		}
		if err == nil {
			deleted[topic.ID] = true
			name := topic.Name
			answer.Topic, answer.TopicID = &name, topic.ID
			err = d.add([]metadata.Record{&metadata.RemoveTopicRecord{ID: topic.ID}})
		}
		answer.ErrorCode, answer.ErrorMessage = codeAndMessage(err)
		response.Topics = append(response.Topics, answer)
	}
	return response, d.records
}

// deleteTargets lists the topics to delete: by name before version 6, by
// name or ID from version 6.
func deleteTargets(request *kmsg.DeleteTopicsRequest) []kmsg.DeleteTopicsRequestTopic {
	if request.Version >= 6 {
		return request.Topics
	}
	targets := make([]kmsg.DeleteTopicsRequestTopic, 0, len(request.TopicNames))
	for _, name := range request.TopicNames {
		target := kmsg.NewDeleteTopicsRequestTopic()
		target.Topic = &name
		targets = append(targets, target)
	}
	return targets
}

// deleteTarget finds a topic to delete by name or by ID (not both) in the
// working image, not the scratch one, so that a topic named twice in one
// request is found twice and answered as a duplicate.
func (c *Controller) deleteTarget(wanted kmsg.DeleteTopicsRequestTopic) (metadata.Topic, error) {
	byID := metadata.TopicID(wanted.TopicID)
	switch {
	case wanted.Topic != nil && !byID.IsZero():
		return metadata.Topic{}, fmt.Errorf("%w: a topic is named by its name or its ID, not both", kerr.InvalidRequest)
	case wanted.Topic != nil:
		if topic, ok := c.working.TopicByName(*wanted.Topic); ok {
			return topic, nil
		}
		return metadata.Topic{}, fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, *wanted.Topic)
	case !byID.IsZero():
		if topic, ok := c.working.TopicByID(byID); ok {
			return topic, nil
		}
		return metadata.Topic{}, fmt.Errorf("%w: no topic with id %s", kerr.UnknownTopicID, byID)
	}
	return metadata.Topic{}, fmt.Errorf("%w: a topic needs a name or an ID", kerr.InvalidRequest)
}

func (c *Controller) createPartitions(request *kmsg.CreatePartitionsRequest) (kmsg.Response, []metadata.Record) {
	response := kmsg.NewPtrCreatePartitionsResponse()
	response.Version = request.Version
	repeated := duplicates(request.Topics, func(t kmsg.CreatePartitionsRequestTopic) string { return t.Topic })
	d := c.newDecision()
	for _, topic := range request.Topics {
		answer := kmsg.NewCreatePartitionsResponseTopic()
		answer.Topic = topic.Topic
		var err error
		if repeated[topic.Topic] {
			err = fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, topic.Topic)
		} else {
			err = c.addPartitions(d, topic)
		}
		answer.ErrorCode, answer.ErrorMessage = codeAndMessage(err)
		response.Topics = append(response.Topics, answer)
	}
	if request.ValidateOnly {
		return response, nil
	}
	return response, d.records
}

// addPartitions grows one topic to Count partitions with the replication
// factor of its first partition, placed or assigned.
func (c *Controller) addPartitions(d *decision, request kmsg.CreatePartitionsRequestTopic) error {
	topic, ok := d.scratch.TopicByName(request.Topic)
	if !ok {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, request.Topic)
	}
	current := int32(len(topic.Partitions))
	if request.Count <= current || request.Count > partitionsPerTopicMax {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger and at most %d",
			kerr.InvalidPartitions, request.Topic, current, request.Count, partitionsPerTopicMax)
	}
	assert(current > 0, "a topic without partitions")
	factor := len(topic.Partitions[0].Replicas)
	replicas, err := c.newReplicas(d.scratch, request, int(request.Count-current), factor)
	if err != nil {
		return err
	}
	records := make([]metadata.Record, 0, len(replicas))
	for index, assignment := range replicas {
		state, err := newPartition(d.scratch, topic.ID, current+int32(index), assignment)
		if err != nil {
			return err
		}
		records = append(records, &metadata.PartitionRecord{PartitionState: state})
	}
	return d.add(records)
}

func (c *Controller) newReplicas(image *metadata.Image, request kmsg.CreatePartitionsRequestTopic, count, factor int) ([][]int32, error) {
	if request.Assignment == nil {
		return metadata.PlaceReplicas(image, count, factor)
	}
	if len(request.Assignment) != count {
		return nil, fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(request.Assignment), count)
	}
	assignments := make([][]int32, 0, count)
	for _, assignment := range request.Assignment {
		assignments = append(assignments, assignment.Replicas)
	}
	return assignments, checkAssignments(image, assignments, factor)
}
