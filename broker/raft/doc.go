// Package raft is the Raft of the cluster metadata log, after KRaft (KIP-595,
// KIP-996, KIP-630's snapshots): a pure, single-threaded state machine in the shape of etcd raft's
// RawNode and TigerBeetle's replica. It performs no I/O, reads no clock,
// starts no goroutine and draws every random choice from the injected
// *core.Rand, so a simulator can replay any schedule from a seed.
//
// # Inputs and outputs
//
// The host drives a Node with five kinds of event, all from one loop:
//
//   - Tick: one unit of logical time. The host calls it at a fixed period of
//     its core.Clock; every timeout is counted in ticks.
//   - Step(Message): a quorum RPC arrived. Messages carry franz-go kmsg
//     types: Vote (with KIP-996's PreVote), BeginQuorumEpoch, EndQuorumEpoch,
//     Fetch (FetchOffset, LastFetchedEpoch; DivergingEpoch, SnapshotId and
//     CurrentLeader in the answer), FetchSnapshot and DescribeQuorum.
//   - Propose(data): the leader appends a record.
//   - Compact(offset, epoch, data): the host made a snapshot of its state
//     machine durable; the node may drop the entries it covers.
//   - Advance: the I/O of the last Ready completed (it is durable and its
//     messages were sent).
//
// Its output is a Ready: the quorum state (HardState: epoch, vote, leader) to
// write, a snapshot fetched from the leader to persist and install, entries
// to truncate and append, whether an fsync is owed, messages to send and
// committed entries to apply (see Ready for the exact steps).
// The ordering rule is "persist, then send": no message of a Ready may leave
// before its state is durable. That one rule gives three guarantees:
//
//   - A vote is durable before the granted answer leaves, so a voter that
//     loses power right after voting cannot vote again in that epoch.
//   - A new epoch is durable before the node announces it or acts in it.
//   - A follower's Fetch leaves only after every entry below its FetchOffset
//     is durable, so the offsets a leader counts towards the high watermark
//     survive any crash of the follower. The leader counts its own log only
//     up to what Advance confirmed.
//
// # States
//
// Roles follow KRaft's QuorumState: Unattached (an epoch, maybe a vote, no
// leader), Prospective (pre-vote in progress; the epoch is unchanged),
// Candidate (epoch bumped, voted for itself), Leader, Follower and Resigned
// (a leader that gave up its epoch). A restarted node resumes from its
// durable HardState and log: as Follower of the leader it knew, as Resigned if
// it was the leader (its per-voter view is gone), otherwise Unattached. Its
// high watermark restarts at its snapshot's offset (0 without one) and is
// relearned from the leader.
//
// # Elections
//
// A voter whose election or fetch timeout expires first runs a pre-vote:
// Vote requests with PreVote set and the epoch it would take. A voter grants
// a pre-vote only if the candidate's log is at least as up to date (later
// last epoch, or equal epoch and not shorter) and it does not itself hear
// from a leader: the leader refuses, and so does a follower that fetched
// successfully within the fetch timeout. Only with a majority of pre-votes
// does the node bump the epoch and ask for real votes. A real vote goes to
// the first up-to-date candidate of an epoch and to no other. A candidate
// with a majority becomes leader, appends a leader-change entry (nil Data) in
// its epoch and sends BeginQuorumEpoch until each voter has fetched.
//
// Check-quorum: a leader from which fewer than a majority of voters (itself
// included) fetched within 1.5 fetch timeouts resigns and sends
// EndQuorumEpoch, listing successors by how much of its log they hold; a
// follower told so starts its pre-vote at once (Resign does the same at a
// controlled shutdown). With pre-vote and the follower's lease, a
// partitioned, restarted or lagging voter cannot depose a leader that a
// majority follows, and a leader cut off from the majority stops leading on
// its own. A lease comes only from a successful Fetch in the current life:
// voters that restart knowing a dead leader still elect another.
//
// A prospective voter whose pre-vote fails goes back to the leader it knew
// (it may be alive; only a Fetch can tell). A voter that reached a later
// epoch and lost there never fetches from an older epoch's leader; the
// leader re-sends BeginQuorumEpoch to voters that stopped fetching, learns
// the later epoch from the refusal, and the election that follows brings the
// voter back.
//
// # Observers
//
// A node whose Config.ID is not among Config.Voters is an observer, as a
// process.roles=broker node is in KRaft: it replicates the log and learns the
// high watermark like a follower (capped at its own log end), but it is only
// ever Unattached or Follower. It never votes (it refuses Vote requests
// without changing state), never campaigns, and no leader counts it towards
// the high watermark or check-quorum; the leader lists it among
// DescribeQuorum's Observers while it fetched within ten fetch timeouts (at
// most 1024 are remembered). Leaders send BeginQuorumEpoch and EndQuorumEpoch
// to voters only, so an observer finds the leader through Fetch: while it
// knows no leader, or its leader has been silent for the fetch timeout, each
// Fetch goes to a voter drawn from Config.Rand; the leader serves it, and any
// other voter refuses with CurrentLeader naming the leader and epoch it knows,
// which the observer then follows. The host persists an observer's
// HardState exactly as a voter's (its VotedFor stays NoNode).
//
// # Replication
//
// Replication is pull-based, as in KRaft. A follower keeps one Fetch in
// flight, carrying its log end (FetchOffset) and the epoch of its last entry
// (LastFetchedEpoch). The leader checks them against its own log: if it
// holds that epoch up to at least FetchOffset, the logs match up to there (the
// log matching property), the leader records FetchOffset as that voter's
// durable end and answers with the next entries; otherwise it answers
// DivergingEpoch, the end of the largest epoch not after LastFetchedEpoch in
// its log, and the follower truncates to where both logs may still agree and
// fetches again. Responses are matched to the Fetch in flight by correlation
// id, so a duplicated or late answer never truncates or appends twice.
//
// The leader's high watermark is the largest offset that a majority of
// voters hold durably, and it advances only onto an entry of the leader's
// own epoch (the leader-change entry makes that possible at once); entries
// of earlier epochs are committed with it. A follower takes the leader's
// high watermark up to its own log end, and never moves it back. A leader
// refuses proposals once UncommittedEntriesMax entries await commit.
//
// # Snapshots (KIP-630)
//
// The node keeps its log in memory from its log start offset on. Entries
// below it are covered by the snapshot at the log start, an image of the
// host's state machine that the node keeps (in memory, as opaque bytes) only
// to send to followers that fall behind.
//
// The host's contract, in full:
//
//   - Taking a snapshot: between an Advance and the next Ready, at an offset
//     above LogStartOffset and at or below the end of the CommittedEntries it
//     has applied, the host writes its state machine's image durably
//     (atomically: temporary file, sync, rename, directory sync), then calls
//     Compact(offset, epoch, data) where epoch is the Epoch of the entry at
//     offset-1 (the snapshot id is offset and epoch, as Kafka names
//     snapshot files). Only when Compact returns nil may it delete the
//     durable entries below offset and older snapshots; it must not modify
//     data afterwards. Any other call is refused (ErrSnapshotNotAllowed) and
//     changes nothing.
//   - Installing a fetched snapshot: a Ready whose Snapshot is not nil
//     (steps 2 and 7 of Ready): persist the snapshot atomically, then delete
//     every log entry, before anything else of the Ready but the quorum
//     state; after sending, replace the state machine's whole state with
//     Snapshot.Data, then apply CommittedEntries, which start at
//     Snapshot.Offset.
//   - Restarting: Restored.Snapshot is the latest snapshot on disk and
//     Restored.Entries the log beside it (it may still hold entries the
//     snapshot covers, or, after a crash mid-install, entries that do not
//     continue it: the node drops those and its first Ready truncates them).
//     The host loads Snapshot.Data into its state machine itself; the node's
//     log start, high watermark and applied offset restart at
//     Snapshot.Offset.
//
// A leader answers a Fetch with its snapshot's id (Fetch's SnapshotId)
// instead of entries when the follower's log cannot continue its own above
// the log start, as Kafka's validateOffsetAndEpoch does: the FetchOffset is
// below the log start, or at it with another LastFetchedEpoch, or the
// LastFetchedEpoch is older than the snapshot's (the divergence may lie below
// the log start, where the leader no longer knows its epochs). The follower
// or observer then sends FetchSnapshot (v0, as Kafka 3.x until 3.9) from byte
// position 0 and on; the leader answers chunks of at most
// Config.SnapshotChunkBytesMax bytes (or the request's MaxBytes). The bytes
// served are the data followed by a CRC32C of the snapshot id and the data,
// since FetchSnapshot itself carries no checksum. Only the answer to the
// request in flight counts, only at the position asked, within the announced
// size, for the same snapshot id, so a duplicated or late chunk is ignored; a
// whole snapshot whose checksum fails is dropped and fetched again (Step
// reports the error). A complete one resets the log to start, empty, at its
// offset, moves the high watermark there and goes to the host in the next
// Ready. A leader that has compacted past the snapshot a follower is
// fetching answers SNAPSHOT_NOT_FOUND, and the follower's next Fetch learns
// the new one. A FetchSnapshot from a voter counts for check-quorum, as in
// Kafka, but a voter's log counts towards the high watermark only once it
// fetches entries again.
//
// # Invariants (asserted in the code)
//
//   - The epoch never decreases; within an epoch a node's vote and its known
//     leader, once set, never change (setHardState).
//   - One leader per epoch: a node that led an epoch is never told that
//     another leads it, and never follows two leaders in one epoch.
//   - The log's epochs never decrease along the log, and never exceed the
//     node's epoch; offsets are dense.
//   - The leader's high watermark lands only on an entry of its own epoch
//     held durably by a majority; no node's high watermark moves back while
//     it runs; no node truncates below its high watermark.
//   - applied offset <= high watermark <= log end offset; a leader holds its
//     epoch's leader-change entry.
//   - An observer is only ever Unattached or Follower, and only voters are
//     counted in the high watermark and check-quorum.
//   - log start offset <= applied offset and <= high watermark (a snapshot
//     is only taken at or below both, and a fetched one is installed only
//     beyond the high watermark, which then moves to it); the snapshot at
//     the log start always exists; nothing is truncated below the log start
//     (a DivergingEpoch below it is refused as malformed).
//
// The tests check the cross-node properties at every step of random schedules
// of 3 to 5 voters and 0 to 2 observers with message loss, duplication and
// reordering, partitions, crashes that lose unpersisted state (also part way
// through a Ready, between writing a fetched snapshot and deleting the log it
// replaces), restarts and snapshots taken at random by the hosts: at most one
// leader per epoch, identical committed prefixes everywhere, a monotonic high
// watermark per running node, every leader holding what was committed before
// its epoch, every committed entry on a majority of voters' disks (in a
// snapshot or the log), every snapshot (taken, fetched, installed or kept at
// a log start) equal to the state of a hash-chain state machine at its
// offset, and a log start never beyond the high watermark; observers never
// ask for or grant a vote and are never listed as voters. After healing, a
// new entry must commit everywhere, observers included, within a bound.
// Scripted scenarios each fail when their protection is switched off
// (Config.unsafe, for tests only).
//
// # Not yet
//
//   - The snapshot is kept whole in memory (and its wire form beside it), so
//     a very large state machine costs twice its size in memory; there is
//     no size limit on a fetched snapshot, and the node keeps only the
//     snapshot at its log start (a follower fetching an older one starts
//     over). The node never decides when to snapshot: the host does.
//   - Membership changes (KIP-853, AddRaftVoter/RemoveRaftVoter): the voter
//     set is fixed from controller.quorum.voters; an observer cannot be
//     promoted.
//   - Long-polling Fetch (the leader answers at once; an idle follower
//     fetches once per tick); PartitionMaxBytes is sent but the leader bounds
//     answers by FetchEntriesMax only.
//   - A durable high watermark: a restarted node relearns it from the
//     leader, so a lone restarted node cannot apply anything beyond its
//     snapshot until a leader exists.
//   - The wire: messages are kmsg values at the versions in messages.go but
//     no codec, connection or host runs them yet, and the node is not wired
//     into the broker.
//   - Directory ids (KIP-853), endpoints in the responses, and
//     DescribeQuorum's timestamps.
package raft
