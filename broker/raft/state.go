package raft

import "fmt"

// Role is what a node currently does in the quorum, after KRaft's
// QuorumState: Kafka names the same states Unattached, Prospective,
// Candidate, Leader, Follower and Resigned.
type Role int8

const (
	// RoleUnattached knows the epoch but no leader; it may have voted in it.
	RoleUnattached Role = iota
	// RoleProspective runs a pre-vote (KIP-996) without changing its epoch.
	RoleProspective
	// RoleCandidate has bumped the epoch, voted for itself and asks for votes.
	RoleCandidate
	// RoleLeader accepts proposals and answers Fetch.
	RoleLeader
	// RoleFollower fetches from the leader of its epoch.
	RoleFollower
	// RoleResigned was the leader of its epoch and gave up (check-quorum or a
	// requested resignation); it waits for a later epoch.
	RoleResigned
)

// String returns Kafka's name for the role.
func (r Role) String() string {
	switch r {
	case RoleUnattached:
		return "Unattached"
	case RoleProspective:
		return "Prospective"
	case RoleCandidate:
		return "Candidate"
	case RoleLeader:
		return "Leader"
	case RoleFollower:
		return "Follower"
	case RoleResigned:
		return "Resigned"
	}
	return fmt.Sprintf("Role(%d)", int8(r))
}

// NoNode stands for "no node": no vote cast, no leader known. It is Kafka's -1.
const NoNode int32 = -1

// HardState is the quorum state that must survive a crash (KRaft's
// quorum-state file): the epoch, the vote cast in it and the leader known in
// it. A node that forgot its vote could vote twice in one epoch, and a node
// that forgot its epoch could accept a deposed leader.
type HardState struct {
	Epoch    int32
	VotedFor int32
	LeaderID int32
}

// emptyHardState is the quorum state of a node that has never run.
var emptyHardState = HardState{Epoch: 0, VotedFor: NoNode, LeaderID: NoNode}

// Snapshot is an image of the host's state machine after applying every
// entry below Offset (KRaft's snapshot, KIP-630). Its id is (Offset, Epoch),
// Kafka's snapshot end offset and epoch. Data is opaque to the node: the host
// produces it (Compact) and consumes it (Ready.Snapshot, Restored.Snapshot);
// the node only keeps it in memory to send to lagging followers. The zero
// Snapshot means "no snapshot": the log starts at offset 0.
type Snapshot struct {
	// Offset is the snapshot's end offset: it covers every entry below
	// Offset, and the log continues at Offset (the log start offset).
	Offset int64
	// Epoch is the epoch of the entry at Offset-1.
	Epoch int32
	// Data is the state machine's image. The node never modifies it, and
	// the host must not modify a Data the node handed out.
	Data []byte
}

// Ready is the work a node has accumulated since the last Advance, as data.
// The host performs it in this order, then calls Advance:
//
//  1. If HardStateChanged, make HardState durable (KRaft writes its
//     quorum-state file atomically and syncs it). It goes first so that a
//     crash part way never leaves entries of an epoch the quorum state has
//     not reached.
//  2. If Snapshot is not nil, the node installed a snapshot fetched from the
//     leader (FetchSnapshot) and its log now starts, empty, at
//     Snapshot.Offset. Make the snapshot durable atomically (write a
//     temporary file, sync it, rename it, sync the directory: a crash leaves
//     the previous snapshot or this one, whole), and only then remove every
//     entry of the durable log, whatever its offsets: the entries below
//     Snapshot.Offset are covered by it and any at or after it may diverge
//     from the leader's. A crash between the two is safe (New drops entries
//     that do not continue the restored snapshot).
//  3. If TruncateToOffset >= 0, remove every entry at or after it from the
//     durable log.
//  4. Append Entries to the durable log, in order. After step 2 they start
//     at Snapshot.Offset.
//  5. If MustSync, sync the log and wait for it.
//  6. Only then send Messages. A vote granted, an epoch announced or a Fetch
//     sent (whose FetchOffset tells the leader what this node holds) must
//     never reach another node before the state it reports is durable.
//  7. If Snapshot is not nil, replace the state machine's whole state with
//     Snapshot.Data first. Then apply CommittedEntries to the state machine,
//     in order; after a snapshot they start at Snapshot.Offset. They are
//     committed by a majority, so they may be applied before step 5.
//
// A crash at any point may lose steps not yet made durable (a torn append
// keeps a prefix of Entries); the node then restarts from what was.
type Ready struct {
	HardState        HardState
	HardStateChanged bool
	// Snapshot, when not nil, is a snapshot fetched from the leader that the
	// host must persist and install (steps 2 and 7). It is always beyond
	// every entry the host applied before.
	Snapshot         *Snapshot
	TruncateToOffset int64
	Entries          []Entry
	MustSync         bool
	Messages         []Message
	CommittedEntries []Entry
}

// IsEmpty reports whether the Ready asks for nothing.
func (r *Ready) IsEmpty() bool {
	return !r.HardStateChanged && r.Snapshot == nil && r.TruncateToOffset < 0 && len(r.Entries) == 0 &&
		len(r.Messages) == 0 && len(r.CommittedEntries) == 0
}

// Restored is the durable state a node restarts from: exactly what the host
// made durable by following Ready's steps and Compact's contract.
type Restored struct {
	HardState HardState
	// Entries are the durable log's entries in offset order. Without a
	// Snapshot they start at offset 0. With one they may start anywhere at
	// or below Snapshot.Offset (a host need not have deleted the entries the
	// snapshot covers); the node drops those below Snapshot.Offset, and
	// drops every entry when the one at Snapshot.Offset-1 is missing or of
	// another epoch (a crash in step 2 of Ready), asking the host in its
	// first Ready to truncate the log at Snapshot.Offset.
	Entries []Entry
	// Snapshot is the latest snapshot the host made durable (the zero
	// Snapshot if none). The node restarts with its log start offset, high
	// watermark and applied offset at Snapshot.Offset: the host loads
	// Snapshot.Data into its state machine itself before it applies the
	// first Ready's CommittedEntries, which start at Snapshot.Offset.
	Snapshot Snapshot
}
