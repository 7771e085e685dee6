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
// An Image holds the registered brokers (ID, broker epoch, incarnation ID,
// fenced or not, in controlled shutdown or not),
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
//     larger broker epoch and its incarnation ID; it starts fenced (KIP-631).
//   - FenceBrokerRecord, UnfenceBrokerRecord: for the named incarnation
//     only, so a stale fence or unfence is rejected. A fence ends a
//     controlled shutdown.
//   - ControlledShutdownRecord: the named incarnation, unfenced and leading
//     nothing, is shutting down (KIP-841) and may lead nothing until it
//     registers again.
//   - TopicRecord: a topic with its ID; names and IDs are unique.
//   - RemoveTopicRecord: a topic goes with its partitions and configs; its
//     name is free at once.
//   - PartitionRecord: the next partition of a topic (or, in a snapshot, a
//     partition restated with its current epochs).
//   - PartitionChangeRecord: a partition's whole new state with its epochs.
//   - ConfigRecord: one configuration of a topic or broker set or deleted.
//   - BatchRecord: several of the above, applied all or none, so that one
//     decision of the controller (a topic with all its partitions, a fence
//     with the leaderships it moves) commits atomically in one Raft entry.
//
// Every record is validated against the image before anything changes; a
// record that does not fit returns an error wrapping ErrRejected (bytes that
// do not decode: ErrMalformed) and leaves the image, applied offset
// included, exactly as it was. The decision depends only on the image and
// the bytes, so every replica accepts and rejects the same entries and
// stays identical; nothing here ranges over a map without sorting. Clone
// copies an image deeply, for the active controller's working image.
// Snapshot encodes the image as the records that rebuild it, and Load
// rebuilds and checks it; equal images give equal bytes.
//
// # Invariants
//
// Check verifies them on the whole image; Apply runs the same per-partition
// checks on every new state and asserts them again after the change:
//
//   - a partition's leader is -1, or in its ISR, among its replicas and a
//     registered broker neither fenced nor shutting down: no fenced broker
//     leads, not even between two records (a broker that leads cannot be
//     fenced or start a controlled shutdown; FenceBrokerRecords moves its
//     leaderships first, as Kafka's controller does); no broker is both
//     fenced and shutting down;
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
// is enabled, any live replica, always in replica order (live: registered,
// unfenced, not shutting down). EvacuateBrokerRecords moves a broker's
// leaderships away and takes it out of ISRs; FenceBrokerRecords (a session
// expired) and ControlledShutdownRecords (KIP-841) follow them with their
// broker record. PreferredLeaderChange hands a partition back to its first
// replica (ElectLeaders, auto.leader.rebalance.enable). PlaceReplicas spreads the replicas and leaders of new partitions evenly
// over the unfenced brokers and answers INVALID_REPLICATION_FACTOR when the
// factor exceeds the registered brokers.
//
// # Not yet
//
//   - Wiring: broker/controller proposes these records, but no node applies
//     the log yet.
//   - Records Kafka has and we lack: UnregisterBrokerRecord, feature levels,
//     producer IDs, racks in registrations; a controlled
//     shutdown is one-way, where Kafka's BrokerRegistrationChangeRecord also
//     records fencing changes.
//   - Decisions: ISR expansion and the recovering leader's return to
//     RECOVERED (AlterPartition), placement that weighs the load brokers
//     already carry or their racks, ELR maintenance below
//     min.insync.replicas as KIP-966 specifies, and keeping a cleanly
//     restarted broker in its ISRs (KIP-966's PreviousBrokerEpoch).
//   - Delta images: Apply changes the image in place (a batch of several
//     records through a whole copy, which costs one copy of the image per
//     batch); a host that needs the previous image copies it first.
package metadata
