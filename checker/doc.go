// Package checker decides, from a recorded history of client operations
// against a Kafka-style broker, whether the broker kept its promises. It is
// a set of pure functions: the same history always gives the same verdict,
// the same anomalies in the same order and the same text, whatever the
// machine. It must not import package broker, so that it shares no code (and
// no bugs) with what it judges.
//
// # Histories
//
// A History is a list of operations (Op): produces, polls, commits, reads of
// committed offsets and seeks, each with a client, a session, call and
// return times in virtual nanoseconds, and an outcome: OK, Fail (definitely
// did not take effect) or Indefinite (may have taken effect, at any time
// after its call). An operation is named by its index in History.Ops. The
// final drain after healing is recorded as ordinary polls with Poll.Final
// set; History.Ends holds the high-water marks observed after healing.
// Histories round-trip through JSON (EncodeJSON, DecodeJSON) and render as
// compact text (History.Text).
//
// Two contracts bind the recorder:
//   - Every produced value is unique, except that a non-idempotent
//     producer's retries of one send are recorded as separate Indefinite
//     operations with the same value (so the value may legitimately appear
//     at several offsets). An idempotent producer's send is one operation.
//   - acks=0 produces are indefinite whatever their recorded outcome.
//
// # Checks
//
// Check runs them all; each also has its own function.
//   - Linearizable: per partition, against a log model indexed by what the
//     history observed (see logModel and docs/checker.md). By default it is
//     decided directly from the observed offsets in O(n log n)
//     (MethodOffsets, offsets.go); porcupine's generic search over the same
//     model (MethodPorcupine) is kept as a cross-check and for Visualize.
//   - LostWrites, InconsistentOffsets, Duplicates, UnexpectedReads,
//     ProducerOrder: the delivery properties of produced values.
//   - PollOrder, CommitOrder: the consumer-side properties.
//   - Drains: the final drain reached the end of every partition.
//
// Transactions are not modelled yet. The hook is the deliveryChecks list in
// check.go: aborted reads (G1a) and reads of uncommitted data under
// read_committed will be checks there, once Produce records its transaction
// and whether it committed; Poll.Isolation already records the consumer's
// isolation level.
//
// # Determinism
//
// The offset method is a plain scan. Porcupine starts goroutines
// internally; when it is used, the checker calls it one partition at a
// time without a timeout, and bounds the search by a count of model steps
// instead (Options.LinearizabilityStepsMax), so the verdict, including an
// Unknown verdict, never depends on timing. Unknown is never a pass.
package checker
