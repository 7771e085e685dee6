// Package quorum hosts broker/raft on a node: it is the I/O half that the
// pure Raft leaves out. It writes what each Ready asks for to the node's
// core.FS through core.IO before any of the Ready's messages leave, carries
// quorum RPCs between controllers as Kafka request and response frames over
// core.Network, and ticks Raft from core.Clock. Like the rest of the broker
// it starts no goroutine and reads no wall clock, so the simulator runs it
// unchanged.
//
// # Files
//
// The metadata log directory (KRaft's __cluster_metadata-0) holds two
// files:
//
//   - quorum-state: the epoch, the vote cast in it and the leader known in
//     it, as JSON with KRaft's field names and a checksum trailer, replaced
//     atomically (written, synced, renamed, directory synced). A file that
//     fails its checksum stops the node at startup: guessing an epoch or a
//     vote could let it vote twice.
//   - 00000000000000000000.log: the entries as Kafka v2 record batches of
//     one record each (base offset = entry offset, partition leader epoch =
//     entry epoch, value = entry data).
//
// At startup the longest valid prefix of the log is kept: a batch that is
// cut short, fails its CRC, does not follow in offset, goes back in epoch or
// is past the quorum state's epoch ends the log, and the rest is cut off and
// synced away. Only an unsynced append can be torn, and no other node was
// told about it, because messages leave only after the sync.
//
// # Order of effects
//
// The host keeps at most one Ready in flight. For it, one I/O job writes the
// quorum state, truncates, appends and syncs, in that order; when the job
// completes, the host sends the messages, calls Advance and hands the
// committed entries to OnUpdate. A Ready with nothing to write is completed
// at once. A failed write or sync halts the host (OnHalt): what the disk
// holds is no longer known, and the node's next life rereads it.
//
// # Transport
//
// Requests to another voter go over one outbound connection per peer, to
// its controller listener (controller.quorum.voters), dialed on first use
// and after it breaks. A connection on which requests wait and nothing came
// back for quorum.request.timeout.ms is closed and dialed again: a peer that
// went silent must not hold the quorum's traffic on a dead connection
// (TestQuorumIsolatedLeaderIsReplaced fails without this). Requests from
// peers arrive on the node's own listener, which passes them to
// HandleRequest with a callback for the answer; the host gives each its own
// correlation id towards Raft and routes Raft's answer back through that
// callback.
//
// # Not yet
//
//   - Snapshots: the log is kept whole, on disk and in Raft's memory.
//   - Observers: every node that runs the host is a voter.
//   - Damage at rest in the metadata log is treated like a torn tail: the
//     log is cut at the first bad batch. An acknowledged entry cut this way
//     could break Raft's majority; the simulator does not yet aim corruption
//     at this log.
package quorum
