// Package metadata is the replicated state machine of the cluster metadata
// log, after KRaft (KIP-500, KIP-631): the records the active controller
// commits through broker/raft, the Image every broker and controller builds
// by applying them in order, and the controller's pure decisions (leader
// election, fencing, replica placement). Like broker/raft it performs no
// I/O, reads no clock and starts no goroutine; unlike it, it draws no random
// numbers at all. It imports nothing from broker/raft: it consumes committed
// entries as bytes with their offset and epoch, so the two meet only in the
// host that passes one's output to the other.
//
// # State
//
// An Image holds the registered brokers (ID, broker epoch, fenced or not),
// the topics by name and by ID, each topic's partitions numbered from 0
// without gaps, the configurations of topics and brokers, and the offset
// and Raft epoch of the last applied entry. A partition's state
// (PartitionState) is its replicas (the first is the preferred leader), its
// ISR, its eligible leader replicas (ELR, KIP-966), its leader or -1, its
// leader epoch, its partition epoch, and whether its leader is recovering
// from an unclean election (Kafka's LeaderRecoveryState).
//
// # Events
//
// Apply(offset, epoch, data) applies one committed entry. Empty data is Raft's
// leader-change entry and only advances the applied offset. Otherwise the
// data is one record (see Encode for the bytes):
//
//   - RegisterBrokerRecord: a broker, or a new incarnation of it with a
//     larger broker epoch; it starts fenced (KIP-631).
//   - FenceBrokerRecord, UnfenceBrokerRecord: for the named incarnation
//     only, so a stale fence or unfence is rejected.
//   - TopicRecord: a topic with its ID; names and IDs are unique.
//   - PartitionRecord: the next partition of a topic (or, in a snapshot, a
//     partition restated with its current epochs).
//   - PartitionChangeRecord: a partition's whole new state with its epochs.
//   - ConfigRecord: one configuration of a topic or broker set or deleted.
//
// Every record is validated against the image before anything changes; a
// record that does not fit returns an error wrapping ErrRejected (bytes that
// do not decode: ErrMalformed) and leaves the image, applied offset
// included, exactly as it was. The decision depends only on the image and
// the bytes, so every replica accepts and rejects the same entries and
// stays identical; nothing here ranges over a map without sorting.
// Snapshot encodes the image as the records that rebuild it, and Load
// rebuilds and checks it; equal images give equal bytes.
//
// # Invariants
//
// Check verifies them on the whole image; Apply runs the same per-partition
// checks on every new state and asserts them again after the change:
//
//   - a partition's leader is -1, or in its ISR, among its replicas and a
//     registered, unfenced broker: no fenced broker leads, not even between
//     two records (a broker that leads cannot be fenced; FenceBrokerRecords
//     moves its leaderships first, as Kafka's controller does);
//   - replicas are distinct registered brokers; ISR and ELR are distinct,
//     disjoint subsets of them; a recovering leader is alone in its ISR;
//   - the partition epoch bumps by exactly one on every change (KAFKA-15021);
//     the leader epoch bumps by exactly one when the leader changes or a
//     replica is removed and stays put otherwise, so it never decreases;
//   - a leader from outside the previous ISR and ELR is an unclean election
//     and must be marked recovering.
//
// # Decisions
//
// ElectLeader picks a new leader for a partition whose leader is gone: live
// ISR members first, then live ELR members, then, only when unclean election
// is enabled, any live replica, always in replica order. FenceBrokerRecords
// returns what the controller commits when a broker's session expires.
// PlaceReplicas spreads the replicas and leaders of new partitions evenly
// over the unfenced brokers and answers INVALID_REPLICATION_FACTOR when the
// factor exceeds the registered brokers.
//
// # Not yet
//
//   - Wiring: no node applies the log yet, and no controller proposes these
//     records or answers CreateTopics, AlterPartition, BrokerRegistration or
//     BrokerHeartbeat through them.
//   - Records Kafka has and we lack: RemoveTopicRecord (DeleteTopics),
//     UnregisterBrokerRecord, BrokerRegistrationChangeRecord (controlled
//     shutdown, KIP-841), feature levels, producer IDs, listeners and racks
//     in registrations.
//   - Decisions: preferred-leader election (ElectLeaders,
//     auto.leader.rebalance.enable), ISR expansion and the recovering
//     leader's return to RECOVERED (AlterPartition), placement that weighs
//     the load brokers already carry or their racks, and ELR maintenance
//     below min.insync.replicas as KIP-966 specifies.
//   - Delta images: Apply changes the image in place; a host that needs the
//     previous image (to publish only what changed) copies it first.
package metadata
