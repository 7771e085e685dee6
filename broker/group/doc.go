// Package group is the consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a deterministic
// state machine, plus committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete) and group administration (ListGroups, DescribeGroups,
// DeleteGroups).
//
// The coordinator never blocks and never starts goroutines. It sees time only
// through a core.Clock (timers for session, rebalance and sync deadlines), draws
// member ids from a core.Rand, and makes state durable through a Store that the
// broker backs with the internal __consumer_offsets log. Every handler answers
// through its respond callback exactly once: at once, or later when a
// rebalance phase ends, a timer fires or the Store reports durability.
//
// # Group states
//
//	Empty                no members; the group may still hold committed offsets
//	PreparingRebalance   the join phase: members (re)send JoinGroup; their
//	                     requests are parked until the phase ends
//	CompletingRebalance  the sync phase: the generation is fixed, every member
//	                     got its JoinGroup answer; members send SyncGroup and
//	                     wait for the leader's assignment to become durable
//	Stable               the leader's assignment is durable and delivered
//	Dead                 DeleteGroups is writing the group's tombstones
//
// # Events and transitions
//
//	Empty               --first JoinGroup------------------------> PreparingRebalance
//	PreparingRebalance  --all members joined, or join deadline---> CompletingRebalance (generation+1)
//	PreparingRebalance  --phase ends with no member left---------> Empty (generation+1)
//	CompletingRebalance --leader's assignment durable------------> Stable
//	CompletingRebalance --join of a new or changed member, leave,
//	                      session timeout, sync deadline, store
//	                      failure--------------------------------> PreparingRebalance
//	Stable              --join of a new member, of the leader or of
//	                      a member with changed protocols, leave,
//	                      session timeout, sync deadline---------> PreparingRebalance
//	Empty               --DeleteGroups----------------------------> Dead
//	Dead                --tombstones durable----------------------> (removed)
//	Dead                --tombstone write failed-----------------> Empty
//
// The join phase ends as soon as every member has a parked JoinGroup and no
// member id handed out with MEMBER_ID_REQUIRED is outstanding, or when the
// join deadline (the largest rebalance timeout of the members) expires;
// members that did not rejoin by then are removed. A group leaving Empty waits
// at least Config.InitialRebalanceDelay, extended while new members keep
// arriving, but never beyond the rebalance timeout (Kafka's
// group.initial.rebalance.delay.ms).
//
// The leader is the previous leader if it rejoined, otherwise the member that
// joined first. The protocol is chosen by Kafka's vote: among the protocols
// every member supports, each member votes for the first one in its own
// preference order; most votes win, and a tie goes to the candidate that the
// earliest-joined member prefers.
//
// # Invariants (checked by group.checkInvariants after every event)
//
//   - Members are kept in join order; the index by id and by group instance id
//     agree with that list, and the group never exceeds MembersPerGroupMax
//     members plus pending member ids.
//   - Empty and Dead groups have no members; Dead groups have a tombstone
//     write in flight.
//   - In PreparingRebalance the join deadline is armed, and the phase has not
//     silently finished: some member has not rejoined, a pending member id is
//     outstanding, or the initial delay is running.
//   - Only members parked in the join phase hold a parked JoinGroup, and the
//     count of parked joins equals the number of such members.
//   - In CompletingRebalance and Stable the leader is a member, a protocol is
//     chosen and every member supports it, and no JoinGroup is parked.
//   - A SyncGroup is parked only in CompletingRebalance.
//   - In Stable every member holds the assignment from the leader of the
//     current generation; assignments are never delivered to a member of
//     another generation.
//   - Generations only grow.
//
// # Durability
//
// Offsets are visible to OffsetFetch only after the Store reported them
// durable, and the commit is answered only then. The leader's assignment is
// written as a group metadata record before any member receives it. Store
// completions for one group arrive in Append order (a log), so the committed
// offset of a partition is always the last durable commit. Replay rebuilds
// offsets and group metadata from the log after a restart.
package group
