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
// The metadata log directory (KRaft's __cluster_metadata-0) holds, between
// two operations of the host:
//
//   - quorum-state: the epoch, the vote cast in it and the leader known in
//     it, as JSON with KRaft's field names and a checksum trailer, replaced
//     atomically (written, synced, renamed, directory synced). A file that
//     fails its checksum stops the node at startup: guessing an epoch or a
//     vote could let it vote twice.
//   - <offset>-<epoch>.checkpoint (e.g.
//     00000000000000001000-0000000003.checkpoint), the newest snapshot of
//     the state machine, if one was taken: the image after every entry below
//     offset, epoch being the epoch of the entry at offset-1. Its contents
//     are the offset and epoch again, then the StateMachine's bytes, with a
//     CRC32C trailer; it is written atomically.
//   - <offset>.log (e.g. 00000000000000001000.log), the one segment: the
//     entries from the snapshot's offset on (from 0 without a snapshot), as
//     Kafka v2 record batches of one record each (base offset = entry
//     offset, partition leader epoch = entry epoch, value = entry data).
//
// At startup the newest checkpoint whose checksum and header hold is loaded
// into the StateMachine (StateMachine.Restore) and passed to Raft
// (raft.Restored.Snapshot). A damaged one is passed over for an older one
// still on disk, if the log reaches back to it; with none the node refuses
// to start with an error that names the files: it cannot rebuild the state
// the snapshot held, and the operator can move the directory away so that
// the node fetches everything from the leader. The log is then read from
// the segments (a later segment holds, from its base offset on, what the log
// held when it was written, and takes precedence there), keeping the longest
// valid prefix: a batch that is cut short, fails its CRC, does not follow in
// offset, goes back in epoch or is past the quorum state's epoch ends the
// log. Only an unsynced append can be torn, and no other node was told about
// it, because messages leave only after the sync. Entries that do not
// continue the snapshot (the entry before its offset missing or of another
// epoch) are dropped. Finally the directory is settled back to the layout
// above: if the last segment starts at the snapshot's offset its torn tail is
// cut and synced away; otherwise the entries from the snapshot's offset on
// are written as a new segment (atomically), and only then are the other
// segments, older checkpoints and temporary files removed.
//
// # Snapshots
//
// The node applies committed entries to its StateMachine in OnUpdate. Once
// SnapshotIntervalEntries entries or SnapshotIntervalBytes bytes of entry
// data were applied since the last snapshot (or the restart), the host,
// between two Readies and taking none meanwhile:
//
//  1. asks the StateMachine for its image at the applied offset;
//  2. writes it as <offset>-<epoch>.checkpoint atomically (one I/O job);
//  3. calls raft.Compact, after which Raft serves the snapshot to followers
//     that fall behind its log start;
//  4. only if Compact accepted it (a second I/O job), copies the log from
//     offset on into a new segment <offset>.log (temporary file, sync,
//     rename, directory sync), switches appends to it, and then removes the
//     old segment and the older checkpoints and syncs the directory.
//
// A snapshot fetched from the leader (Ready.Snapshot) is persisted in the
// Ready's I/O job right after the quorum state: its checkpoint atomically,
// then an empty segment named by its offset (atomically), then the removal
// of the old segment and checkpoints; the Ready's entries are then appended
// to the new segment. After the Ready's messages are sent, the host calls
// StateMachine.Restore with it before OnUpdate hands out the entries that
// follow it.
//
// # Crash safety
//
// Every file that is created is complete and durable under its final name
// before anything refers to it or anything it replaces is removed, so a
// crash between any two I/O calls leaves one of these states, each of which
// a restart brings back to the layout above without losing a committed
// entry:
//
//   - A temporary file: a write cut before its rename. Nothing refers to it;
//     the restart removes it.
//   - A new checkpoint beside the old segment (a crash after step 2 or 3, or
//     in an install before the new segment): the segment starts at or below
//     the snapshot's offset. If its entries continue the snapshot they are
//     kept from its offset on and rewritten as the new segment, which
//     finishes the compaction; if not (an install), they are dropped, as
//     Raft's Restored contract says, since the snapshot covers every
//     committed entry below its offset and entries after it may diverge from
//     the leader's.
//   - The new segment beside the old one and an older checkpoint (a crash in
//     step 4 before the removals): the newest checkpoint is used with the
//     segment named by its offset, and the rest is removed.
//   - Some of the old files removed: the same, with less to remove.
//
// A crash before the checkpoint is durable leaves the previous snapshot and
// the whole log, as before the snapshot began; Raft has not been told of the
// new one (Compact comes after the write), so no follower was served it.
// Restarting also writes only whole files by rename and removes only what
// the newest valid checkpoint and the segment beside it make redundant, so a
// crash during a restart is one of the same states.
// TestStoreCrashAtEveryStep fails each disk call of a compaction and of an
// install in turn, with and without effect, cuts the power and restarts;
// TestQuorumPowerLossDuringSnapshot cuts the power of every voter at
// successive events of a snapshot and checks that every committed entry
// survives.
//
// # Order of effects
//
// The host keeps at most one Ready (or snapshot) in flight. For a Ready, one
// I/O job writes the quorum state, installs a fetched snapshot, truncates,
// appends and syncs, in that order; when the job
// completes, the host sends the messages, calls Advance and hands the
// committed entries to OnUpdate. A Ready with nothing to write is completed
// at once. A failed write or sync halts the host (OnHalt): what the disk
// holds is no longer known, and the node's next life rereads it.
//
// # Transport
//
// Requests to another voter go over one outbound connection per peer, to
// its controller listener (controller.quorum.voters), dialed on first use
// and after it breaks (Channel, which also carries a broker's requests to
// the active controller). A connection on which requests wait and no answer
// came for a whole controller.quorum.request.timeout.ms is closed and dialed
// again: a peer that went silent must not hold the quorum's traffic on a
// dead connection (TestQuorumIsolatedLeaderIsReplaced fails without this).
// The watchdog counts answers between its timers and never reads the clock,
// which a clock fault can step back by hours. Requests from
// peers arrive on the node's own listener, which passes them to
// HandleRequest with a callback for the answer; the host gives each its own
// correlation id towards Raft and routes Raft's answer back through that
// callback.
//
// # Not yet
//
//   - Snapshot timing: the thresholds count entries and bytes
//     (metadata.log.max.record.bytes.between.snapshots), not time (Kafka's
//     metadata.log.max.snapshot.interval.ms). Writing a snapshot pauses the
//     quorum's Readies for its syncs, and the whole snapshot is held in
//     memory (by Raft too, to serve followers).
//   - Only the newest snapshot is kept, so a damaged checkpoint found at a
//     restart has nothing older to fall back to unless a crash left one.
//   - Damage at rest in the metadata log: a segment whose reads keep
//     ending early at the same place is cut there like a torn tail (a read
//     that ends early is read again first, so a bit flipped on the way is
//     never taken for one). An acknowledged entry cut this way could break
//     Raft's majority; the simulator does not yet aim damage at this log.
package quorum
