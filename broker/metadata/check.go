package metadata

import (
	"errors"
	"fmt"
	"slices"
)

// Check verifies the image's invariants and returns the first violation:
//
//   - every partition's leader is -1, or in its ISR, among its replicas and
//     a registered broker neither fenced nor in controlled shutdown (no
//     fenced broker leads); no broker is both fenced and shutting down;
//   - replicas are distinct registered brokers, at least one and at most
//     replicasMax; ISR and ELR are distinct subsets of the replicas and do
//     not overlap;
//   - 0 <= leader epoch <= partition epoch (every leader epoch bump is a
//     change, and every change bumps the partition epoch);
//   - a recovering leader (unclean election) is alone in its ISR;
//   - partitions are numbered 0..n-1 and the two topic indexes agree.
//
// That leader epochs never decrease and partition epochs increase on every
// change are properties of transitions: Apply asserts them on each change
// and the property test checks them between consecutive images.
func (image *Image) Check() error {
	for _, id := range image.brokerIDs() {
		broker := image.brokers[id]
		if broker.ID != id || broker.Epoch < 0 || (broker.Fenced && broker.InControlledShutdown) {
			return fmt.Errorf("broker %d: id %d, epoch %d, fenced %t and in controlled shutdown %t",
				id, broker.ID, broker.Epoch, broker.Fenced, broker.InControlledShutdown)
		}
	}
	if len(image.topicsByName) != len(image.topicsByID) {
		return fmt.Errorf("%d topic names but %d topic ids", len(image.topicsByName), len(image.topicsByID))
	}
	for _, topic := range image.topicsInNameOrder() {
		if err := image.checkTopic(topic); err != nil {
			return err
		}
	}
	return nil
}

func (image *Image) checkTopic(topic *Topic) error {
	if topic == nil || image.topicsByName[topic.Name] != topic.ID {
		return errors.New("the topic indexes disagree")
	}
	for index := range topic.Partitions {
		partition := &topic.Partitions[index]
		if int(partition.Partition) != index || partition.TopicID != topic.ID {
			return fmt.Errorf("topic %q: partition %d is stored at %d", topic.Name, partition.Partition, index)
		}
		if partition.LeaderEpoch < 0 || partition.PartitionEpoch < partition.LeaderEpoch {
			return fmt.Errorf("%s-%d: leader epoch %d, partition epoch %d", topic.Name, index, partition.LeaderEpoch, partition.PartitionEpoch)
		}
		if err := image.checkPartition(topic.Name, partition); err != nil {
			return err
		}
	}
	return nil
}

// checkPartition checks one partition's state against the brokers. Apply
// runs it on every new state before accepting it, and Check on every stored
// one, so a record is rejected exactly when it would break an invariant.
func (image *Image) checkPartition(topicName string, state *PartitionState) error {
	name := fmt.Sprintf("%s-%d", topicName, state.Partition)
	if len(state.Replicas) == 0 || len(state.Replicas) > replicasMax {
		return fmt.Errorf("%s: %d replicas, want 1 to %d", name, len(state.Replicas), replicasMax)
	}
	if err := image.checkReplicas(name, state.Replicas); err != nil {
		return err
	}
	if err := checkSubset(name, "ISR", state.ISR, state.Replicas); err != nil {
		return err
	}
	if err := checkSubset(name, "ELR", state.ELR, state.Replicas); err != nil {
		return err
	}
	for _, broker := range state.ELR {
		if slices.Contains(state.ISR, broker) {
			return fmt.Errorf("%s: broker %d is in both the ISR and the ELR", name, broker)
		}
	}
	if state.LeaderRecovering && (len(state.ISR) != 1 || (state.Leader != NoLeader && state.ISR[0] != state.Leader)) {
		return fmt.Errorf("%s: a recovering leader must be alone in the ISR, have %v", name, state.ISR)
	}
	return image.checkLeader(name, state)
}

func (image *Image) checkReplicas(name string, replicas []int32) error {
	for index, broker := range replicas {
		if _, ok := image.brokers[broker]; !ok {
			return fmt.Errorf("%s: replica %d is not a registered broker", name, broker)
		}
		if slices.Contains(replicas[:index], broker) {
			return fmt.Errorf("%s: replica %d appears twice", name, broker)
		}
	}
	return nil
}

func checkSubset(name, label string, members, replicas []int32) error {
	for index, broker := range members {
		if !slices.Contains(replicas, broker) {
			return fmt.Errorf("%s: %s member %d is not a replica", name, label, broker)
		}
		if slices.Contains(members[:index], broker) {
			return fmt.Errorf("%s: %s member %d appears twice", name, label, broker)
		}
	}
	return nil
}

func (image *Image) checkLeader(name string, state *PartitionState) error {
	if state.Leader == NoLeader {
		return nil
	}
	if !slices.Contains(state.ISR, state.Leader) {
		return fmt.Errorf("%s: leader %d is not in the ISR %v", name, state.Leader, state.ISR)
	}
	if !image.live(state.Leader) {
		return fmt.Errorf("%s: leader %d is fenced or in controlled shutdown", name, state.Leader)
	}
	return nil
}
