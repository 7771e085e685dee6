package metadata

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrRejected wraps every refusal of a well-formed record that does not fit
// the image (an unknown topic, a fenced leader, an epoch that goes back...).
var ErrRejected = errors.New("metadata record rejected")

// Apply decodes one committed entry of the metadata log and applies it. An
// entry with no data is Raft's leader-change entry: it only advances the
// applied offset. Offsets must increase and epochs must not decrease. A
// record that does not decode or does not fit the image returns an error
// and leaves the image exactly as it was; every replica rejects the same
// records, since the decision depends only on the image and the bytes.
func (image *Image) Apply(offset int64, epoch int32, data []byte) error {
	if err := image.checkPosition(offset, epoch); err != nil {
		return err
	}
	if len(data) == 0 {
		image.appliedOffset, image.appliedEpoch = offset, epoch
		return nil
	}
	record, err := Decode(data)
	if err != nil {
		return fmt.Errorf("offset %d: %w", offset, err)
	}
	return image.ApplyRecord(offset, epoch, record)
}

// ApplyRecord applies an already decoded record, as Apply does.
func (image *Image) ApplyRecord(offset int64, epoch int32, record Record) error {
	if err := image.checkPosition(offset, epoch); err != nil {
		return err
	}
	if err := image.apply(record); err != nil {
		return fmt.Errorf("offset %d: %w", offset, err)
	}
	image.appliedOffset, image.appliedEpoch = offset, epoch
	return nil
}

func (image *Image) checkPosition(offset int64, epoch int32) error {
	if offset <= image.appliedOffset {
		return fmt.Errorf("%w: offset %d is not after the applied offset %d", ErrRejected, offset, image.appliedOffset)
	}
	if epoch < image.appliedEpoch {
		return fmt.Errorf("%w: epoch %d is before the applied epoch %d", ErrRejected, epoch, image.appliedEpoch)
	}
	return nil
}

// apply validates the record against the image and, only if it fits,
// changes the image. Each case validates everything before its first write.
func (image *Image) apply(record Record) error {
	switch record := record.(type) {
	case *RegisterBrokerRecord:
		return image.applyRegisterBroker(record)
	case *FenceBrokerRecord:
		return image.applyFence(record.BrokerID, record.BrokerEpoch, true)
	case *UnfenceBrokerRecord:
		return image.applyFence(record.BrokerID, record.BrokerEpoch, false)
	case *TopicRecord:
		return image.applyTopic(record)
	case *PartitionRecord:
		return image.applyPartition(&record.PartitionState)
	case *PartitionChangeRecord:
		return image.applyPartitionChange(&record.PartitionState)
	case *ConfigRecord:
		return image.applyConfig(record)
	case *ControlledShutdownRecord:
		return image.applyControlledShutdown(record)
	case *RemoveTopicRecord:
		return image.applyRemoveTopic(record)
	case *ProducerIdsRecord:
		if record.NextProducerID <= image.nextProducerID {
			return rejectf("next producer id %d does not pass %d", record.NextProducerID, image.nextProducerID)
		}
		image.nextProducerID = record.NextProducerID
		return nil
	case *BatchRecord:
		return image.applyBatch(record)
	}
	return fmt.Errorf("%w: unknown record type %T", ErrRejected, record)
}

func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

func (image *Image) applyRegisterBroker(record *RegisterBrokerRecord) error {
	if record.BrokerID < 0 {
		return rejectf("broker id %d is negative", record.BrokerID)
	}
	if record.BrokerEpoch < 0 {
		return rejectf("broker %d: epoch %d is negative", record.BrokerID, record.BrokerEpoch)
	}
	if old, ok := image.brokers[record.BrokerID]; ok {
		if record.BrokerEpoch <= old.Epoch {
			return rejectf("broker %d: epoch %d is not after its registered epoch %d", record.BrokerID, record.BrokerEpoch, old.Epoch)
		}
		if err := image.checkLeadsNothing(record.BrokerID, record.Fenced); err != nil {
			return err
		}
	}
	image.brokers[record.BrokerID] = &Broker{ID: record.BrokerID, Epoch: record.BrokerEpoch, IncarnationID: record.IncarnationID,
		Listeners: slices.Clone(record.Listeners), Fenced: record.Fenced}
	return nil
}

// applyControlledShutdown marks one incarnation of an unfenced broker as
// shutting down. Like a fence, it is rejected while the broker leads.
func (image *Image) applyControlledShutdown(record *ControlledShutdownRecord) error {
	broker, ok := image.brokers[record.BrokerID]
	if !ok {
		return rejectf("broker %d is not registered", record.BrokerID)
	}
	if broker.Epoch != record.BrokerEpoch {
		return rejectf("broker %d: epoch %d is not its registered epoch %d", record.BrokerID, record.BrokerEpoch, broker.Epoch)
	}
	if broker.Fenced || broker.InControlledShutdown {
		return rejectf("broker %d: a fenced broker (%t) or one already shutting down (%t) cannot start a controlled shutdown",
			record.BrokerID, broker.Fenced, broker.InControlledShutdown)
	}
	if err := image.checkLeadsNothing(record.BrokerID, true); err != nil {
		return err
	}
	broker.InControlledShutdown = true
	return nil
}

// applyRemoveTopic deletes a topic, its partitions and its configurations.
func (image *Image) applyRemoveTopic(record *RemoveTopicRecord) error {
	topic, ok := image.topicsByID[record.ID]
	if !ok {
		return rejectf("removal of unknown topic id %s", record.ID)
	}
	delete(image.topicsByID, record.ID)
	delete(image.topicsByName, topic.Name)
	delete(image.configs, ConfigResource{Type: kmsg.ConfigResourceTypeTopic, Name: topic.Name})
	return nil
}

// applyBatch applies every record of a batch to a copy of the image and
// keeps the copy only if all fit, so a batch is all or nothing. A batch of
// one record needs no copy: a single record already validates before it
// writes. Batches hold no batches (Decode refuses them, and so does this,
// for records built in memory).
func (image *Image) applyBatch(batch *BatchRecord) error {
	if len(batch.Records) == 0 || len(batch.Records) > BatchRecordsMax {
		return rejectf("a batch of %d records, want 1 to %d", len(batch.Records), BatchRecordsMax)
	}
	for index, record := range batch.Records {
		if _, nested := record.(*BatchRecord); nested {
			return rejectf("batch record %d is a batch", index)
		}
	}
	if len(batch.Records) == 1 {
		return image.apply(batch.Records[0])
	}
	working := image.Clone()
	for index, record := range batch.Records {
		if err := working.apply(record); err != nil {
			return fmt.Errorf("batch record %d of %d: %w", index, len(batch.Records), err)
		}
	}
	*image = *working
	return nil
}

// applyFence fences or unfences one incarnation of a broker, ending any
// controlled shutdown. A record for an
// older incarnation is stale (the broker registered again since) and is
// rejected, as is a fence of a broker that still leads: the controller must
// move its leaderships first (see FenceBrokerRecords), so that no image, not
// even between two records, has a fenced leader.
func (image *Image) applyFence(brokerID int32, brokerEpoch int64, fenced bool) error {
	broker, ok := image.brokers[brokerID]
	if !ok {
		return rejectf("broker %d is not registered", brokerID)
	}
	if broker.Epoch != brokerEpoch {
		return rejectf("broker %d: epoch %d is not its registered epoch %d", brokerID, brokerEpoch, broker.Epoch)
	}
	if broker.Fenced == fenced {
		return rejectf("broker %d: already fenced=%t", brokerID, fenced)
	}
	if err := image.checkLeadsNothing(brokerID, fenced); err != nil {
		return err
	}
	broker.Fenced = fenced
	// A fenced broker leads nothing, so its controlled shutdown, if any, is
	// over: a broker is never both fenced and shutting down.
	broker.InControlledShutdown = false
	return nil
}

func (image *Image) checkLeadsNothing(brokerID int32, fenced bool) error {
	if !fenced {
		return nil
	}
	if name, leads := image.leadership(brokerID); leads {
		return rejectf("broker %d cannot be fenced while it leads %s", brokerID, name)
	}
	return nil
}

func (image *Image) applyTopic(record *TopicRecord) error {
	if err := ValidateTopicName(record.Name); err != nil {
		return err
	}
	if record.ID.IsZero() {
		return rejectf("topic %q: the zero topic id is reserved", record.Name)
	}
	if _, ok := image.topicsByName[record.Name]; ok {
		return rejectf("topic %q already exists", record.Name)
	}
	if _, ok := image.topicsByID[record.ID]; ok {
		return rejectf("topic %q: id %s is already taken", record.Name, record.ID)
	}
	image.topicsByID[record.ID] = &Topic{Name: record.Name, ID: record.ID}
	image.topicsByName[record.Name] = record.ID
	return nil
}

// metadataTopicName is the metadata log's own topic, which no topic may
// take: its partition directory is the quorum's (KRaft reserves it too).
const metadataTopicName = "__cluster_metadata"

// ValidateTopicName applies Kafka's rules: 1 to 249 characters from
// [a-zA-Z0-9._-], neither "." nor "..", and not the metadata log's topic.
// The error wraps ErrRejected.
func ValidateTopicName(name string) error {
	if name == "" || len(name) > topicNameBytesMax || name == "." || name == ".." || name == metadataTopicName {
		return rejectf("topic name %q is empty, longer than %d bytes, \".\", \"..\" or the metadata log's", name, topicNameBytesMax)
	}
	for _, character := range []byte(name) {
		legal := character == '.' || character == '_' || character == '-' ||
			(character >= 'a' && character <= 'z') || (character >= 'A' && character <= 'Z') ||
			(character >= '0' && character <= '9')
		if !legal {
			return rejectf("topic name %q has the illegal character %q", name, character)
		}
	}
	return nil
}

func (image *Image) applyPartition(state *PartitionState) error {
	topic, ok := image.topicsByID[state.TopicID]
	if !ok {
		return rejectf("partition %d of unknown topic id %s", state.Partition, state.TopicID)
	}
	if int(state.Partition) != len(topic.Partitions) {
		return rejectf("topic %q: partition %d is not the next partition %d", topic.Name, state.Partition, len(topic.Partitions))
	}
	if state.LeaderEpoch < 0 || state.PartitionEpoch < state.LeaderEpoch {
		return rejectf("%s-%d: leader epoch %d and partition epoch %d must satisfy 0 <= leader epoch <= partition epoch",
			topic.Name, state.Partition, state.LeaderEpoch, state.PartitionEpoch)
	}
	if err := image.validatePartitionState(topic.Name, state); err != nil {
		return err
	}
	topic.Partitions = append(topic.Partitions, state.clone())
	assert(image.checkPartition(topic.Name, &topic.Partitions[state.Partition]) == nil, "a created partition breaks an invariant")
	return nil
}

// applyPartitionChange checks the transition as well as the new state: the
// partition epoch bumps by one on every change (KAFKA-15021), the leader
// epoch bumps by one exactly when the leader changes or a replica is removed,
// and a leader from outside the old ISR and ELR is an unclean election that
// must be recorded as such (LeaderRecovering).
func (image *Image) applyPartitionChange(state *PartitionState) error {
	topic, ok := image.topicsByID[state.TopicID]
	if !ok {
		return rejectf("change of partition %d of unknown topic id %s", state.Partition, state.TopicID)
	}
	old := image.partition(state.TopicID, state.Partition)
	if old == nil {
		return rejectf("change of unknown partition %s-%d", topic.Name, state.Partition)
	}
	if err := image.validatePartitionState(topic.Name, state); err != nil {
		return err
	}
	if err := validateTransition(topic.Name, old, state); err != nil {
		return err
	}
	oldLeaderEpoch, oldPartitionEpoch := old.LeaderEpoch, old.PartitionEpoch
	*old = state.clone()
	assert(old.LeaderEpoch >= oldLeaderEpoch, "a leader epoch went back")
	assert(old.PartitionEpoch > oldPartitionEpoch, "a partition changed without a new partition epoch")
	assert(image.checkPartition(topic.Name, old) == nil, "a partition change breaks an invariant")
	return nil
}

func validateTransition(topicName string, old, state *PartitionState) error {
	name := fmt.Sprintf("%s-%d", topicName, state.Partition)
	if state.PartitionEpoch != old.PartitionEpoch+1 {
		return rejectf("%s: partition epoch %d is not the next epoch %d", name, state.PartitionEpoch, old.PartitionEpoch+1)
	}
	leaderEpoch := old.LeaderEpoch
	if leaderEpochBumps(old, state) {
		leaderEpoch++
	}
	if state.LeaderEpoch != leaderEpoch {
		return rejectf("%s: leader epoch %d, want %d (it bumps only when the leader changes or a replica is removed)", name, state.LeaderEpoch, leaderEpoch)
	}
	unclean := uncleanElection(old, state)
	if unclean && !state.LeaderRecovering {
		return rejectf("%s: leader %d is from outside the ISR %v and ELR %v, an unclean election that must mark the leader recovering",
			name, state.Leader, old.ISR, old.ELR)
	}
	if state.LeaderRecovering && !old.LeaderRecovering && !unclean {
		return rejectf("%s: only an unclean election may mark the leader recovering", name)
	}
	return nil
}

// leaderEpochBumps reports whether a change from old to state needs a new
// leader epoch: a new leader, or a replica that is no longer assigned.
func leaderEpochBumps(old, state *PartitionState) bool {
	if old.Leader != state.Leader {
		return true
	}
	for _, replica := range old.Replicas {
		if !slices.Contains(state.Replicas, replica) {
			return true
		}
	}
	return false
}

// uncleanElection reports whether state elects a leader that was neither in
// the old ISR nor among the old eligible leader replicas.
func uncleanElection(old, state *PartitionState) bool {
	return state.Leader != NoLeader && state.Leader != old.Leader &&
		!slices.Contains(old.ISR, state.Leader) && !slices.Contains(old.ELR, state.Leader)
}

// validatePartitionState checks a partition's new state on its own and
// against the brokers, then the unclean-election rule needs the old state
// (validateTransition). Check applies the same rules to the whole image.
func (image *Image) validatePartitionState(topicName string, state *PartitionState) error {
	if err := image.checkPartition(topicName, state); err != nil {
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return nil
}

func (image *Image) applyConfig(record *ConfigRecord) error {
	if record.Name == "" || len(record.Name) > configNameBytesMax {
		return rejectf("config name %q is empty or longer than %d bytes", record.Name, configNameBytesMax)
	}
	if record.Value != nil && len(*record.Value) > configValueBytesMax {
		return rejectf("config %q: value longer than %d bytes", record.Name, configValueBytesMax)
	}
	if err := image.validateResource(record.Resource); err != nil {
		return err
	}
	values := image.configs[record.Resource]
	if record.Value == nil {
		delete(values, record.Name)
		if len(values) == 0 {
			delete(image.configs, record.Resource)
		}
		return nil
	}
	if values == nil {
		values = map[string]string{}
		image.configs[record.Resource] = values
	}
	values[record.Name] = *record.Value
	return nil
}

// validateResource accepts an existing topic, the cluster-wide broker
// default ("") or a broker named by its decimal ID, registered or not (a
// broker's configuration may be set before it first registers).
func (image *Image) validateResource(resource ConfigResource) error {
	switch resource.Type {
	case kmsg.ConfigResourceTypeTopic:
		if _, ok := image.topicsByName[resource.Name]; !ok {
			return rejectf("config of unknown topic %q", resource.Name)
		}
		return nil
	case kmsg.ConfigResourceTypeBroker:
		if resource.Name == "" {
			return nil
		}
		id, err := strconv.ParseInt(resource.Name, 10, 32)
		if err != nil || id < 0 || strconv.FormatInt(id, 10) != resource.Name {
			return rejectf("config of broker %q: not a broker id", resource.Name)
		}
		return nil
	}
	return rejectf("config of unsupported resource type %d", resource.Type)
}
