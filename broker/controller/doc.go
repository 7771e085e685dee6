// Package controller is the active controller of the cluster, after KRaft's
// QuorumController (KIP-500, KIP-631, KIP-841): a deterministic state
// machine that decides changes of the cluster metadata (broker/metadata),
// proposes them through the metadata log's Raft (broker/raft) and answers
// each request once its change is committed. Like both, it performs no I/O,
// reads no clock (the host passes the time in), starts no goroutine, and
// draws randomness (topic IDs) only from the injected *core.Rand.
//
// # State
//
// The host owns the committed image (every committed entry applied in
// order) and the Raft node. An active controller adds:
//
//   - the working image: the committed image plus this controller's own
//     uncommitted proposals, applied in order. Every decision is taken
//     against it, so two creates of one name before the first commits are
//     decided as if one after the other;
//   - the proposals not yet committed, with their offsets and bytes;
//   - the requests decided but not yet answered, each with the offset it
//     waits for;
//   - each broker's session: when it last sent a heartbeat (Kafka's
//     BrokerHeartbeatManager), kept in memory only, as in Kafka.
//
// An inactive controller holds none of these.
//
// # Events
//
//   - Activate(now): the host's Raft node leads and the committed image has
//     applied the epoch's leader-change entry. The working image starts as
//     a copy of the committed one and every registered broker gets a fresh
//     session, so no broker is fenced for heartbeats that went to the
//     previous controller.
//   - Handle(now, request, done): BrokerRegistration, BrokerHeartbeat,
//     CreateTopics, DeleteTopics, CreatePartitions and ElectLeaders (one
//     file each, opening with the versions and behaviour). The decision's
//     records are proposed as one metadata.BatchRecord, so a request's
//     change commits whole or not at all, and are applied to the working
//     image at the offset Raft gives them.
//   - Applied(now): the committed image advanced. Requests whose offset is
//     now committed are answered; committed proposals are dropped.
//   - Tick(now): sessions older than broker.session.timeout.ms are fenced
//     (leaderships moved first), and every leader.imbalance.check.interval
//     partitions go back to their preferred replica when
//     auto.leader.rebalance.enable is set.
//   - Deactivate(): leadership is lost. Every waiting request gets
//     NOT_CONTROLLER (its entry may or may not commit under the next
//     leader; the client retries and the next controller decides from what
//     committed) and the working state is dropped.
//
// # Brokers
//
// A broker's epoch is the offset of the entry that registers it, as in
// Kafka, and it registers fenced. It is unfenced by a heartbeat whose
// metadata offset has reached that epoch (KIP-631's IsCaughtUp), unless it
// wants to stay fenced. Another incarnation (a different IncarnationId)
// registering while the old one's session lives is
// DUPLICATE_BROKER_REGISTRATION; a re-registration moves the broker's
// leaderships away and takes it out of ISRs in the same entry. A heartbeat
// with WantShutdown from a broker that leads starts a controlled shutdown
// (KIP-841): its leaderships move and it leaves the ISRs; a later
// heartbeat, once it leads nothing, fences it and answers ShouldShutdown.
// New leaders come from the ISR, then the ELR, then, only when
// unclean.leader.election.enable holds for the topic (its config, else the
// cluster-wide dynamic default, else Config), any live replica, marked
// recovering.
//
// # Invariants
//
//   - Exactly one answer per request: done is called once, by Handle, by
//     Applied or by Deactivate, and nothing holds it after.
//   - An answer leaves only when the working image it was decided against
//     is committed (a request that proposes nothing waits for the
//     proposals before it), or it is an error that claims nothing
//     (NOT_CONTROLLER, REQUEST_TIMED_OUT, a refusal decided at once).
//   - The working image accepts every proposal (a rejection is a bug and
//     panics), and once every proposal is committed it equals the committed
//     image byte for byte (asserted in Applied).
//   - Raft gives each proposal the offset the working image expected
//     (asserted), so broker epochs are the offsets of their registrations.
//   - What metadata.Image.Check verifies holds in every image the
//     controller builds: no fenced or shutting-down broker leads, epochs
//     move as KAFKA-15021 says, an unclean leader is marked recovering.
//
// The property test drives random registrations, heartbeats, elapsed
// time, creates, deletes, elections, refused proposals and lost and
// regained leadership, and checks these after every step.
//
// # Not yet
//
//   - The broker's controlled-shutdown release does not wait until every
//     other broker has replayed the leadership moves (Kafka's
//     lowestActiveOffset check).
//   - Requests carry no deadline: one waits until its entry commits or
//     leadership is lost. Racks and features of registrations are not
//     recorded (listeners are). Topic configurations are checked only
//     when the host supplies Config.TopicConfigs (the broker does).
//   - A cleanly restarted broker is taken out of its ISRs when it
//     registers again (KIP-966 keeps it, using PreviousBrokerEpoch).
package controller
