package metadata

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ElectLeader is the active controller's decision for a partition whose
// leader is gone: fenced, unregistered or none. It returns the change to
// commit, or ok false when the partition needs none (its leader is live) or
// nothing would change (no candidate and already leaderless).
//
// Candidates are taken in replica order, so the preferred replica wins when
// it can: first live ISR members, then live eligible leader replicas
// (KIP-966), and only when unclean is true any live replica. A leader from
// the ELR becomes the whole ISR; an unclean leader does too and is marked
// LeaderRecovering, which records that the election was unclean. With no
// candidate the partition goes leaderless and keeps its ISR, so that the old
// ISR can lead again when one of its members returns. The leader epoch
// bumps only because the leader changes; the partition epoch bumps always.
func ElectLeader(partition PartitionState, image *Image, unclean bool) (PartitionChangeRecord, bool) {
	return electLeader(partition, image, unclean, image.live)
}

// electLeader is ElectLeader with the liveness test passed in, so that
// FenceBrokerRecords can treat the broker it is about to fence as gone.
func electLeader(partition PartitionState, image *Image, unclean bool, live func(int32) bool) (PartitionChangeRecord, bool) {
	if partition.Leader != NoLeader && live(partition.Leader) {
		return PartitionChangeRecord{}, false
	}
	next := partition.clone()
	next.PartitionEpoch++
	leader, from := chooseLeader(&partition, unclean, live)
	switch from {
	case fromISR:
		next.Leader = leader
	case fromELR:
		next.Leader, next.ISR = leader, []int32{leader}
		next.ELR = slices.DeleteFunc(next.ELR, func(broker int32) bool { return broker == leader })
	case fromAnyReplica:
		next.Leader, next.ISR, next.ELR = leader, []int32{leader}, []int32{}
		next.LeaderRecovering = true
	default:
		if partition.Leader == NoLeader {
			return PartitionChangeRecord{}, false
		}
		next.Leader = NoLeader
	}
	if next.Leader != partition.Leader {
		next.LeaderEpoch++
	}
	assert(next.Leader == NoLeader || live(next.Leader), "an election chose a broker that is not live")
	assert(next.Leader == NoLeader || slices.Contains(next.ISR, next.Leader), "an elected leader is not in its ISR")
	return PartitionChangeRecord{PartitionState: next}, true
}

// candidateSource says where an elected leader came from.
type candidateSource int

const (
	fromNowhere candidateSource = iota
	fromISR
	fromELR
	fromAnyReplica
)

func chooseLeader(partition *PartitionState, unclean bool, live func(int32) bool) (int32, candidateSource) {
	// A recovering leader's ISR may lack committed records, but so may every
	// other replica; its ISR is the best there is and stays eligible.
	for _, replica := range partition.Replicas {
		if live(replica) && slices.Contains(partition.ISR, replica) {
			return replica, fromISR
		}
	}
	for _, replica := range partition.Replicas {
		if live(replica) && slices.Contains(partition.ELR, replica) {
			return replica, fromELR
		}
	}
	if unclean {
		for _, replica := range partition.Replicas {
			if live(replica) {
				return replica, fromAnyReplica
			}
		}
	}
	return NoLeader, fromNowhere
}

// FenceBrokerRecords returns the records that fence a broker, in the order
// they must be committed, as Kafka's controller does when a broker's session
// expires: the changes of EvacuateBrokerRecords, then the
// FenceBrokerRecord. The broker must be registered and unfenced.
func FenceBrokerRecords(image *Image, brokerID int32, uncleanFor func(topicName string) bool) ([]Record, error) {
	broker, ok := image.brokers[brokerID]
	if !ok {
		return nil, rejectf("broker %d is not registered", brokerID)
	}
	if broker.Fenced {
		return nil, rejectf("broker %d is already fenced", brokerID)
	}
	records := EvacuateBrokerRecords(image, brokerID, uncleanFor)
	return append(records, &FenceBrokerRecord{BrokerID: brokerID, BrokerEpoch: broker.Epoch}), nil
}

// ControlledShutdownRecords returns the records that start a broker's
// controlled shutdown (KIP-841): the changes of EvacuateBrokerRecords, then
// the ControlledShutdownRecord. The broker must be registered, unfenced and
// not already shutting down.
func ControlledShutdownRecords(image *Image, brokerID int32, uncleanFor func(topicName string) bool) ([]Record, error) {
	broker, ok := image.brokers[brokerID]
	if !ok {
		return nil, rejectf("broker %d is not registered", brokerID)
	}
	if broker.Fenced || broker.InControlledShutdown {
		return nil, rejectf("broker %d is fenced (%t) or already shutting down (%t)", brokerID, broker.Fenced, broker.InControlledShutdown)
	}
	records := EvacuateBrokerRecords(image, brokerID, uncleanFor)
	return append(records, &ControlledShutdownRecord{BrokerID: brokerID, BrokerEpoch: broker.Epoch}), nil
}

// EvacuateBrokerRecords returns one change per partition where the broker
// leads or sits in the ISR: it leaves the ISR (unless it is the last
// member, which stays so that it can lead again) and, where it led, a new
// leader is elected as ElectLeader would with the broker counted as gone.
// Partitions are visited by topic name and partition number. uncleanFor
// says whether unclean election is enabled for a topic (the broker default
// or the topic's override). After these changes the broker leads nothing,
// so it may be fenced, shut down or registered again.
func EvacuateBrokerRecords(image *Image, brokerID int32, uncleanFor func(topicName string) bool) []Record {
	others := func(id int32) bool { return id != brokerID && image.live(id) }
	var records []Record
	for _, topic := range image.topicsInNameOrder() {
		for _, partition := range topic.Partitions {
			change, ok := fenceChange(partition, image, uncleanFor(topic.Name), brokerID, others)
			if ok {
				assert(change.Leader != brokerID, "evacuating a broker leaves it a leader")
				records = append(records, &change)
			}
		}
	}
	return records
}
func fenceChange(partition PartitionState, image *Image, unclean bool, brokerID int32, live func(int32) bool) (PartitionChangeRecord, bool) {
	if partition.Leader != brokerID && (!slices.Contains(partition.ISR, brokerID) || len(partition.ISR) == 1) {
		return PartitionChangeRecord{}, false
	}
	shrunk := partition.clone()
	if len(shrunk.ISR) > 1 {
		shrunk.ISR = slices.DeleteFunc(shrunk.ISR, func(id int32) bool { return id == brokerID })
	}
	if partition.Leader != brokerID {
		shrunk.PartitionEpoch++
		return PartitionChangeRecord{PartitionState: shrunk}, true
	}
	change, ok := electLeader(shrunk, image, unclean, live)
	assert(ok, fmt.Sprintf("fencing broker %d elected nothing for a partition it led", brokerID))
	return change, true
}

// PreferredLeaderChange returns the change that hands a partition's
// leadership back to its preferred replica (the first), as ElectLeaders with
// the preferred type and auto.leader.rebalance.enable do. The error wraps
// kerr.ElectionNotNeeded when the preferred replica already leads, and
// kerr.PreferredLeaderNotAvailable when it cannot lead (not live or not in
// the ISR). Only the leader and the epochs change.
func PreferredLeaderChange(partition PartitionState, image *Image) (PartitionChangeRecord, error) {
	if len(partition.Replicas) == 0 {
		return PartitionChangeRecord{}, rejectf("partition %d has no replicas", partition.Partition)
	}
	preferred := partition.Replicas[0]
	if partition.Leader == preferred {
		return PartitionChangeRecord{}, fmt.Errorf("%w: broker %d already leads", kerr.ElectionNotNeeded, preferred)
	}
	if !image.live(preferred) || !slices.Contains(partition.ISR, preferred) {
		return PartitionChangeRecord{}, fmt.Errorf("%w: broker %d is not live or not in the ISR %v",
			kerr.PreferredLeaderNotAvailable, preferred, partition.ISR)
	}
	next := partition.clone()
	next.Leader = preferred
	next.LeaderEpoch++
	next.PartitionEpoch++
	return PartitionChangeRecord{PartitionState: next}, nil
}

// ReplicaDirectoryID is the log directory id a broker reports in its
// heartbeat's OfflineLogDirs (KIP-858) when its replica of one partition
// lost stored data: every replica is its own directory here, named after
// the topic id with the partition index mixed into its last four bytes,
// so that the controller takes exactly that replica out of service.
func ReplicaDirectoryID(topic TopicID, partition int32) [16]byte {
	id := [16]byte(topic)
	for i := range 4 {
		id[12+i] ^= byte(uint32(partition) >> (24 - 8*i))
	}
	return id
}

// OfflineReplicaRecords returns the changes that take a broker's replicas
// whose directories it reports offline out of service, as Kafka's
// controller does for an offline log directory: the broker leaves the
// ISR (unless it is the last member: then nothing changes, and the
// partition waits for an operator or an unclean election, as a single
// broker's offline partition does) and the ELR (its data can no longer be
// trusted to hold what was committed),
// and where it led another leader is elected as ElectLeader would with
// the broker counted as gone. Partitions are visited by topic name and
// partition number; those where the broker is already out of service
// need no change.
func OfflineReplicaRecords(image *Image, brokerID int32, offline [][16]byte, uncleanFor func(topicName string) bool) []Record {
	others := func(id int32) bool { return id != brokerID && image.live(id) }
	var records []Record
	for _, topic := range image.topicsInNameOrder() {
		for _, partition := range topic.Partitions {
			if !slices.Contains(partition.Replicas, brokerID) || !slices.Contains(offline, ReplicaDirectoryID(topic.ID, partition.Partition)) {
				continue
			}
			change, ok := offlineChange(partition, image, uncleanFor(topic.Name), brokerID, others)
			if ok {
				records = append(records, &change)
			}
		}
	}
	return records
}

func offlineChange(partition PartitionState, image *Image, unclean bool, brokerID int32, live func(int32) bool) (PartitionChangeRecord, bool) {
	if slices.Equal(partition.ISR, []int32{brokerID}) {
		// The last ISR member: what it holds may be all that is left of
		// what was committed, so it keeps its place (and its leadership,
		// offline, as on a single broker) until an operator or an unclean
		// election decides.
		return PartitionChangeRecord{}, false
	}
	inISR := slices.Contains(partition.ISR, brokerID)
	inELR := slices.Contains(partition.ELR, brokerID)
	if partition.Leader != brokerID && !inISR && !inELR {
		return PartitionChangeRecord{}, false
	}
	next := partition.clone()
	next.ELR = slices.DeleteFunc(next.ELR, func(id int32) bool { return id == brokerID })
	if inISR {
		next.ISR = slices.DeleteFunc(next.ISR, func(id int32) bool { return id == brokerID })
	}
	if partition.Leader != brokerID {
		next.PartitionEpoch++
		return PartitionChangeRecord{PartitionState: next}, true
	}
	change, ok := electLeader(next, image, unclean, live)
	assert(ok, fmt.Sprintf("an offline replica of broker %d that led elected nothing", brokerID))
	assert(change.Leader != brokerID, "an offline replica stays leader")
	return change, true
}
