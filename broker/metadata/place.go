package metadata

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// PlaceReplicas chooses the replicas of new partitions, the first of each
// being its preferred leader. It checks, in Kafka's order, that the counts
// are positive (INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR), that the
// replication factor does not exceed the registered brokers
// (INVALID_REPLICATION_FACTOR) and that some broker is unfenced
// (BROKER_NOT_AVAILABLE); errors wrap the kerr value.
//
// Placement is round robin over the unfenced brokers in ID order, as Kafka's
// striped placer does without racks: partition p starts at broker
// (start+p) mod n and takes the next brokers in turn, so each broker leads
// and holds as many partitions as any other, give or take one. start is the
// number of partitions the image already holds, so successive topics do not
// all put their first leader on the same broker. Fenced brokers fill in only
// when there are too few unfenced ones, and never lead.
func PlaceReplicas(image *Image, partitions, replicationFactor int) ([][]int32, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("%w: %d partitions", kerr.InvalidPartitions, partitions)
	}
	if replicationFactor < 1 || replicationFactor > len(image.brokers) {
		return nil, fmt.Errorf("%w: replication factor %d with %d registered brokers",
			kerr.InvalidReplicationFactor, replicationFactor, len(image.brokers))
	}
	var unfenced, fenced []int32
	for _, id := range image.brokerIDs() {
		if image.brokers[id].Fenced {
			fenced = append(fenced, id)
		} else {
			unfenced = append(unfenced, id)
		}
	}
	if len(unfenced) == 0 {
		return nil, fmt.Errorf("%w: every registered broker is fenced", kerr.BrokerNotAvailable)
	}
	start := image.partitionCount()
	placement := make([][]int32, 0, partitions)
	for partition := range partitions {
		replicas := make([]int32, 0, replicationFactor)
		for index := range min(replicationFactor, len(unfenced)) {
			replicas = append(replicas, unfenced[(start+partition+index)%len(unfenced)])
		}
		for index := 0; len(replicas) < replicationFactor; index++ {
			replicas = append(replicas, fenced[(start+partition+index)%len(fenced)])
		}
		assert(len(replicas) == replicationFactor, "a placement has the wrong number of replicas")
		assert(!image.brokers[replicas[0]].Fenced, "a placement's preferred leader is fenced")
		placement = append(placement, replicas)
	}
	return placement, nil
}

func (image *Image) partitionCount() int {
	count := 0
	for _, topic := range image.topicsByID { // order-independent: a sum
		count += len(topic.Partitions)
	}
	return count
}
