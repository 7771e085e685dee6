// Package client is a Kafka producer, consumer (with manual assignment or
// consumer groups) and a minimal admin client, written only against core.Env.
// It runs unchanged inside the single-threaded simulator and, in production,
// on the event loop of package net.
//
// # Execution model
//
// Everything in this package runs inside callbacks of one event loop: a
// timer fired (core.Clock.AfterFunc), a connection opened, a frame arrived, a
// connection closed. Nothing blocks, nothing starts a goroutine, no channel is
// used. Every operation that needs the network takes a completion callback
// (done) that later runs on the same loop, as a separate event, exactly once.
// Methods must be called from the loop too; none is safe for concurrent use.
//
// # Layers
//
// Cluster owns the connections and the metadata and is shared by the
// producer, the consumer and the admin client built on it:
//
//   - brokerConn: one connection per broker address. It dials with
//     core.Network.Dial, performs the ApiVersions handshake first and picks
//     for every API the highest version that both the broker and this client
//     support. It pipelines up to inflightRequestsMax requests, matching
//     responses by correlation id (Kafka answers in order on a connection),
//     times out each request with a clock timer, and on a broken connection
//     fails every outstanding request with a retriable error that says whether
//     the request had been sent. It redials with exponential backoff and
//     jitter drawn from core.Rand.
//   - Metadata: bootstrap addresses, Metadata requests for the topics the
//     users of the cluster care about, the leader and leader epoch of every
//     partition; refreshed periodically (metadata.max.age.ms) and on demand
//     when a request fails with NOT_LEADER_OR_FOLLOWER,
//     UNKNOWN_TOPIC_OR_PARTITION, a leader epoch error or a connection error.
//
// The Producer batches records per partition (batch.size, linger.ms), sends
// one Produce request per leader with at most one batch per partition, retries
// with backoff while keeping order, and classifies every record's fate with an
// Outcome: OutcomeOK (written at Result.Offset), OutcomeDefiniteFailure (the
// record is certainly not in the log) or OutcomeIndefinite (it may or may not
// be). The simulator's checker depends on this classification; docs/client.md
// states the rules exactly. With enable.idempotence the producer obtains a
// producer id and epoch (InitProducerId), numbers the batches of every
// partition, keeps a batch's sequence across retries so that the broker drops
// duplicates, and never re-numbers a batch that has been sent.
//
// The Consumer fetches with long polling from each partition's leader, decodes
// batches with core/record, skips control batches, aborted transactions (with
// read_committed) and records below the requested offset, and hands records
// to Poll in offset order per partition. With a group it runs the classic
// (eager) group protocol: FindCoordinator, JoinGroup (retrying on
// MEMBER_ID_REQUIRED), SyncGroup with a range or roundrobin assignment
// computed by the leader, Heartbeat, OffsetCommit/OffsetFetch and LeaveGroup.
//
// Admin offers CreateTopics, DeleteTopics, ListTopics (Metadata) and
// ListOffsets.
//
// # Determinism
//
// All time comes from core.Clock timers, all randomness (reconnect jitter,
// the sticky partitioner) from core.Rand, all I/O from core.Network. Maps are
// only ranged over where the order cannot leak, and say so; everything whose
// order matters (brokers, partitions, members) is sorted first.
//
// # Bounds
//
// Every queue is bounded by a named limit (see limits.go): requests queued
// and in flight per connection, records buffered by the producer, records
// buffered by the consumer, topics and partitions tracked. Exceeding one
// gives an error to the caller, never unbounded growth.
package client
